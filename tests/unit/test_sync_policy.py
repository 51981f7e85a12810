"""Sync and recovery policies on real registry files: decisions, absence, locks, calibration, cron."""

from __future__ import annotations

import json
import os
import signal
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.core import jobenv
from orchestrator.core.files import write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.core.slurm import parse_sacct
from orchestrator.core.state import JobState
from orchestrator.launch.memory import MemoryEstimate, Network, calibrate
from orchestrator.scheduler.local_backend import local_observation
from orchestrator.scheduler.observe import sacct_observations
from orchestrator.track.cron import install, line
from orchestrator.track.recovery import Policy, decide
from orchestrator.track.sync import Lock, Tick, sync

CAPTURED = Path(__file__).resolve().parent / "captured"
POLICY = Policy(max_attempts=3, memory_factor=1.5, max_mem_gb=64)
GIB = 1024**3
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("state, attempt, rss_gb, resubmit, mem, words", [
    (JobState.OUT_OF_MEMORY, 1, 7.9, True, 12.0, "retrying with 12 GB"),   # max(8, 7.9) × 1.5
    (JobState.OUT_OF_MEMORY, 1, 35.7, True, 54.0, "retrying with 54 GB"),  # polled kill: MaxRSS above the limit
    (JobState.OUT_OF_MEMORY, 1, None, True, 12.0, "retrying with 12 GB"),
    (JobState.OUT_OF_MEMORY, 3, 7.9, False, None, "all 3 attempts are used"),
    (JobState.TIMEOUT, 1, 2.0, True, 8.0, "TIMEOUT: resuming"),
    (JobState.TIMEOUT, 1, 7.7, True, 12.0,  # crawled at its limit: more memory, not the same
     "TIMEOUT at its memory limit (MaxRSS 7.70 of 8 GB): retrying with 12 GB"),
    (JobState.TIMEOUT, 1, 7.5, True, 8.0, "TIMEOUT: resuming"),  # under 95 % of it
    (JobState.PREEMPTED, 2, None, True, 8.0, "PREEMPTED: resuming"),
    (JobState.NODE_FAIL, 1, None, True, 8.0, "NODE_FAIL: resuming"),
    (JobState.FAILED, 1, None, False, None, "a program error is not retried"),
    (JobState.CANCELLED, 1, None, False, None, "cancelled: not retried"),
    (JobState.COMPLETED, 1, None, False, None, "completed"),
])
def test_recovery_decisions(state, attempt, rss_gb, resubmit, mem, words) -> None:
    decision = decide(state, attempt, 8.0, int(rss_gb * GIB) if rss_gb else None, POLICY)
    assert (decision.resubmit, decision.mem_gb) == (resubmit, mem)
    assert words in decision.reason


def test_memory_raise_is_capped_at_the_partition_limit() -> None:
    assert decide(JobState.OUT_OF_MEMORY, 1, 50.0, None, POLICY).mem_gb == 64
    capped = decide(JobState.OUT_OF_MEMORY, 1, 64.0, None, POLICY)
    assert not capped.resubmit and "partition limit of 64 GB" in capped.reason


def test_step_lines_decide_out_of_memory_and_maxrss() -> None:
    observed = sacct_observations(parse_sacct((CAPTURED / "sacct_terminal.txt").read_text()))
    assert observed["26"].state is JobState.OUT_OF_MEMORY and observed["26"].reason == "step 0 ran out of memory"
    assert observed["26"].max_rss_bytes == 1160 * 1024  # the largest step
    assert observed["23"].state is JobState.TIMEOUT and observed["25"].state is JobState.FAILED
    assert observed["21"].state is JobState.CANCELLED and observed["21"].reason == "JobHeldUser"


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


@pytest.mark.parametrize("local_state, state", [
    ({"exit_code": 0}, JobState.COMPLETED), ({"exit_code": 1}, JobState.FAILED),
    ({"exit_code": 75}, JobState.PREEMPTED), ({"exit_code": 75, "cancelled": True}, JobState.CANCELLED),
    ({"exit_code": 75, "timed_out": True}, JobState.TIMEOUT),  # stopped by submitit's signal before the limit
    ({"runner_pid": 2**22 + 7, "runner_started": 1}, JobState.NODE_FAIL),  # no such process: it died without a word
    ({"runner_pid": os.getpid(), "runner_started": 1}, JobState.NODE_FAIL),  # a live process, not the task (reused pid)
    ({"runner_pid": "stand-in"}, JobState.RUNNING),
])
def test_local_jobs(local_state: dict, state: JobState, tmp_path: Path,
                    executor_task: Callable[[str], dict[str, Any]]) -> None:
    if local_state.get("runner_pid") == "stand-in":
        local_state = executor_task("local-20261121T120000-abcdef")
    if "exit_code" in local_state:
        local_state = {**local_state, "started_at": "2026-11-21T12:00:00+00:00", "ended_at": "2026-11-21T12:01:30+00:00"}
    import socket

    paths = JobPaths(tmp_path, "local-20261121T120000-abcdef")
    paths.dir.mkdir(parents=True)
    write_json_atomic(paths.local_state, {"host": socket.gethostname(), **local_state})
    observed = local_observation(paths)
    assert observed.state is state
    assert observed.elapsed_s == (90 if "exit_code" in local_state else None)


def test_calibration_scales_by_the_worst_recent_ratio() -> None:
    base = MemoryEstimate(1000, 1000, 1000, 850, 8000, 10.0, 1.05, 10.5, Network(2, 32, 3, 1, 64, 128), 0, 0, 0.62,
                          0.0, 0.0, 7.5, 0.11, 11.5, 1.2, 14)
    calibrated = calibrate(base, [("3", 9.2, 11.5), ("2", 6.9, 11.5), ("1", 1.0, None)])
    assert calibrated.calibration_factor == pytest.approx(0.8)
    assert calibrated.peak_gb == pytest.approx(9.2) and calibrated.request_gb == 12
    assert calibrated.calibrated_from == ("3", "2")
    assert calibrate(base, []) == base


def test_cron_install_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "crontab.txt"
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/bash\nif [ "$1" = "-l" ]; then [ -f {store} ] && cat {store} || '
                    f'{{ echo "no crontab for root" >&2; exit 1; }}; else cat > {store}; fi\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    root = tmp_path / "registry"
    store.write_text("0 3 * * * /usr/bin/backup\n")
    assert install(root) is True
    assert install(root) is False
    assert store.read_text().splitlines() == ["0 3 * * * /usr/bin/backup", line(root)]
    assert install(root, every_min=10) is True  # a changed line replaces the old one
    assert store.read_text().splitlines() == ["0 3 * * * /usr/bin/backup", line(root, 10)]
    assert line(root).endswith(f"sync --quiet # orch sync {root}") and "env PATH=" in line(root)


def test_a_corrupt_entry_is_reported_and_the_others_still_synced(tmp_path: Path) -> None:
    entry(tmp_path, "600")
    bad = entry(tmp_path, "601")
    bad.submission.write_text('{"scheduler": "slurm", "submitted_at"')  # cut short
    tick = Tick(tmp_path, 60, clock=lambda: T0)
    assert [p.job_id for p, _, _ in tick.tracked()] == ["600"]
    assert tick.report.problems == [f"skipped 601: {bad.submission}: not valid JSON (Expecting ':' delimiter: "
                                    "line 1 column 38 (char 37)); was it edited by hand or cut short?"]


def test_status_of_a_corrupt_entry_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli import main

    bad = entry(tmp_path, "602")
    bad.submission.write_text("{")
    assert main(["--registry", str(tmp_path), "status", "602"]) == 1
    assert capsys.readouterr().err.startswith(f"orch: error: {bad.submission}: not valid JSON")


def test_cancel_signals_only_the_jobs_own_executor_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      executor_task: Callable[[str], dict[str, Any]]) -> None:
    import socket
    import subprocess
    import sys

    from orchestrator.core.errors import InputError
    from orchestrator.track.cancel import cancel

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    job_id, other = "local-20261121T120000-abcdef", "local-20261121T120000-fedcba"
    paths = create_entry(tmp_path, job_id, {"submission.json": json.dumps({"scheduler": "local"})})
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pretender in ({"runner_pid": bystander.pid, "runner_started": jobenv.process_start(bystander.pid)},
                          executor_task(other)):  # any process of mine; another job's task
            write_json_atomic(paths.local_state, {"host": socket.gethostname(), **pretender})
            with pytest.raises(InputError, match="is not its local executor's task"):
                cancel(tmp_path, job_id)
        assert bystander.poll() is None
        task = executor_task(job_id)
        write_json_atomic(paths.local_state, {"host": socket.gethostname(), **task})
        assert "stop sent to the local executor's task of " + job_id in cancel(tmp_path, job_id)
        assert os.waitpid(task["runner_pid"], 0)[1] == signal.SIGTERM
    finally:
        bystander.kill()
