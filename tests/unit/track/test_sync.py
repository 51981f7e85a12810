"""One sync tick on real registry files: absence is never failure, one tick at a time, a corrupt entry skipped."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from orchestrator.core.files import write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.track.sync import Lock, Tick, sync

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def entry(root: Path, job_id: str, submitted: datetime = T0) -> JobPaths:
    submission = {"scheduler": "slurm", "submitted_at": submitted.isoformat(), "request": {"mem_gb": 8},
                  "config": {"label": "x_v1", "name": "x"}, "attempt": 1, "estimate": {"peak_gb": 6}}
    return create_entry(root, job_id, {"submission.json": json.dumps(submission)})


def test_a_job_missing_from_sacct_is_unknown_and_never_failed_from_absence(tmp_path: Path) -> None:
    paths = entry(tmp_path, "500")
    clock = [T0 + timedelta(minutes=1)]
    tick = Tick(tmp_path, 60, clock=lambda: clock[0])
    record = tick.update(paths, json.loads(paths.submission.read_text()), None, None)
    assert record["state"] == "UNKNOWN" and record["missing_since"] == clock[0].isoformat(timespec="seconds")
    clock[0] += timedelta(hours=5)  # long past the grace period, still no sign of it
    later = Tick(tmp_path, 60, clock=lambda: clock[0])
    record = later.update(paths, json.loads(paths.submission.read_text()), record, None)
    assert record["state"] == "UNKNOWN"
    assert any("not visible to the scheduler since" in p for p in later.report.problems)
    write_json_atomic(paths.run, {"status": "completed"})  # ...until the job's own records settle it
    write_json_atomic(paths.result, {"job_id": "500"})
    record = later.update(paths, json.loads(paths.submission.read_text()), record, None)
    assert (record["state"], record["source"]) == ("COMPLETED", "registry")
    assert "missing_since" not in record


def test_within_the_grace_period_own_records_are_not_used(tmp_path: Path) -> None:
    paths = entry(tmp_path, "501")
    write_json_atomic(paths.run, {"status": "failed", "reason": "boom"})
    tick = Tick(tmp_path, 60, clock=lambda: T0 + timedelta(minutes=2))
    assert tick.update(paths, json.loads(paths.submission.read_text()), None, None)["state"] == "UNKNOWN"


def test_overlapping_ticks_never_both_run(tmp_path: Path) -> None:
    held = Lock(tmp_path)
    assert held.acquire()
    try:
        report = sync(tmp_path)
        assert report.skipped == "another orch sync is running on this registry" and report.scheduler_calls == 0
    finally:
        held.release()
    assert sync(tmp_path).skipped is None


def test_a_corrupt_entry_is_reported_and_the_others_still_synced(tmp_path: Path) -> None:
    entry(tmp_path, "600")
    bad = entry(tmp_path, "601")
    bad.submission.write_text('{"scheduler": "slurm", "submitted_at"')  # cut short
    tick = Tick(tmp_path, 60, clock=lambda: T0)
    assert [p.job_id for p, _, _ in tick.tracked()] == ["600"]
    assert tick.report.problems == [f"skipped 601: {bad.submission}: not valid JSON (Expecting ':' delimiter: "
                                    "line 1 column 38 (char 37)); was it edited by hand or cut short?"]
