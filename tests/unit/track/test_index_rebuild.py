"""The index is a cache: corrupt or deleted, the next tick rebuilds it from the job directories, settled
states and MaxRSS included, without asking the scheduler about jobs it has long forgotten."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core import index, slurm
from orchestrator.core.files import write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.track.sync import Tick

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
GIB = 1024**3


def entry(root: Path, job_id: str, **changes: object) -> JobPaths:
    submission = {"scheduler": "slurm", "submitted_at": T0.isoformat(), "request": {"mem_gb": 8},
                  "config": {"label": "x_v1", "name": "x"}, "attempt": 1, "estimate": {"peak_gb": 6}, **changes}
    return create_entry(root, job_id, {"submission.json": json.dumps(submission)})


def settled(root: Path, job_id: str, **changes: object) -> JobPaths:
    """A job sync saw complete with 6 GB MaxRSS and settled, long ago."""
    paths = entry(root, job_id, **changes)
    write_json_atomic(paths.scheduler, {"state": "COMPLETED", "reason": "", "source": "sacct",
                                        "max_rss_bytes": 6 * GIB, "recovery": {"decision": "completed",
                                                                               "child_job_id": None,
                                                                               "decided_at": T0.isoformat()}})
    return paths


@pytest.fixture
def sacct_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """sacct and squeue that have forgotten every job; the job IDs sacct was asked about."""
    calls: list[list[str]] = []
    monkeypatch.setattr(slurm, "run_sacct", lambda bases, start: calls.append(bases) or [])
    monkeypatch.setattr(slurm, "run_squeue", lambda: [])
    return calls


def tick(root: Path, days: int = 30) -> Tick:
    ticked = Tick(root, 60, clock=lambda: T0 + timedelta(days=days))
    ticked.run()
    return ticked


@pytest.mark.parametrize("damage", ["deleted", "corrupt", "not rows", "not a job ID"])
def test_a_lost_index_is_rebuilt_keeping_settled_states_and_maxrss(
        damage: str, tmp_path: Path, sacct_calls: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    done = settled(tmp_path, "100")
    entry(tmp_path, "101", submitted_at=(T0 + timedelta(days=30)).isoformat())  # new: not settled, asked about
    tick(tmp_path)
    before = index.load(tmp_path)
    record = done.scheduler.read_text()
    path = index.index_path(tmp_path)
    {"deleted": path.unlink, "corrupt": lambda: path.write_text('{"jobs": {'),
     "not rows": lambda: path.write_text('{"jobs": [1]}'),
     "not a job ID": lambda: path.write_text('{"jobs": {"../../x": {"settled": true}}}')}[damage]()
    if damage != "deleted":
        assert main(["--registry", str(tmp_path), "status"]) == 0
        assert f"orch: skipped {path}: " in capsys.readouterr().err
    sacct_calls.clear()
    tick(tmp_path)
    assert sacct_calls == [["101"]]
    rows = index.load(tmp_path)
    assert rows["100"] == before["100"]
    assert (rows["100"]["state"], rows["100"]["max_rss_bytes"], rows["100"]["settled"]) == ("COMPLETED", 6 * GIB, True)
    assert done.scheduler.read_text() == record


def test_a_rebuilt_index_still_reopens_a_settled_search_for_a_late_attempt(tmp_path: Path,
                                                                         sacct_calls: list[list[str]]) -> None:
    settled(tmp_path, "200", worker_ids=["200_0"], scheduler="local")
    settled(tmp_path, "200_0", search_id="200", worker=0, scheduler="local")
    late = entry(tmp_path, "201", search_id="200", worker=0, parent_job_id="200_0", scheduler="local")
    (tmp_path / "jobs" / "200_0" / "children" / "201").write_text("")
    ticked = tick(tmp_path)
    rows = index.load(tmp_path)
    assert rows["201"]["state"] == "PENDING" and rows["200_0"]["settled"]
    assert rows["200"]["state"] == "PENDING" and not rows["200"]["settled"]  # waits for its worker's new attempt
    assert [p.job_id for p, _, _ in ticked.tracked()] == ["200", "201"]
    assert late.scheduler.exists()
