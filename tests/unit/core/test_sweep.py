"""orch sync sweeps the leftovers of interrupted writes once they are a day old, and nothing else."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from orchestrator.core import index, slurm
from orchestrator.core.files import temp_path, write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.track.sync import Tick

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
OLD = time.time() - 2 * 86400


def entry(root: Path, job_id: str, settled: bool) -> JobPaths:
    submission = {"scheduler": "slurm", "submitted_at": T0.isoformat(), "request": {"mem_gb": 8},
                  "config": {"label": "x_v1", "name": "x"}}
    paths = create_entry(root, job_id, {"submission.json": json.dumps(submission)})
    if settled:
        write_json_atomic(paths.scheduler, {"state": "COMPLETED", "reason": "", "source": "sacct",
                                            "max_rss_bytes": None, "recovery": {"decision": "completed",
                                                                                "decided_at": T0.isoformat()}})
    return paths


def make(path: Path, old: bool = True, directory: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        path.mkdir()
        (path / "part.npy").write_text("x")
        os.utime(path / "part.npy", (OLD, OLD) if old else None)
    else:
        path.write_text("x")
    os.utime(path, (OLD, OLD) if old else None)
    return path


@pytest.fixture(autouse=True)
def no_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slurm, "run_sacct", lambda bases, start: [])
    monkeypatch.setattr(slurm, "run_squeue", lambda: [])


def test_stale_leftovers_are_swept_and_counted_and_nothing_else(tmp_path: Path) -> None:
    outside = make(temp_path(tmp_path / "outside" / "secret"))
    root = tmp_path / "registry"
    done = entry(root, "100", settled=True)
    running = entry(root, "101", settled=False)
    stale = [make(temp_path(index.index_path(root))), make(root / ".staging" / "102.deadbeef", directory=True),
             make(temp_path(done.dir / "result.json")), make(temp_path(done.claims / "0003.1")),
             make(temp_path(done.trial_dir(0) / "model.keras")),
             make(done.dir / ".cache.4242.abcdef", directory=True)]
    kept = [make(temp_path(index.index_path(root)), old=False),  # a write in progress
            make(root / ".staging" / "103.cafebabe", directory=True, old=False),
            make(done.dir / "notes.tmp"), make(done.dir / ".result.json.tmp"), make(done.cache / "x_train.tmp"),
            make(temp_path(running.dir / "run.json"))]  # its job is not settled yet
    link = temp_path(done.dir / "link")
    link.symlink_to(outside)
    (done.trial_dir(1)).parent.mkdir(exist_ok=True)
    (done.trial_dir(1)).symlink_to(outside.parent, target_is_directory=True)
    tick = Tick(root, 60, clock=lambda: T0 + timedelta(days=3))
    report = tick.run()
    assert [p for p in stale if os.path.lexists(p)] == []
    assert [p for p in kept if not p.exists()] == []
    assert outside.exists() and link.is_symlink()
    assert report.swept == len(stale) and report.problems == []
    assert f"swept {len(stale)} leftovers of interrupted writes (untouched for a day)" in report.changes
    assert index.load(root)["100"]["swept"] is True
    again = make(temp_path(done.dir / "result.json"))  # a settled job is swept once
    assert Tick(root, 60, clock=lambda: T0 + timedelta(days=3)).run().swept == 0 and again.exists()


def test_a_job_settled_less_than_a_day_ago_waits(tmp_path: Path) -> None:
    done = entry(tmp_path, "100", settled=True)
    leftover = make(temp_path(done.dir / "result.json"))
    assert Tick(tmp_path, 60, clock=lambda: T0 + timedelta(hours=20)).run().swept == 0
    assert leftover.exists() and "swept" not in index.load(tmp_path)["100"]
    assert Tick(tmp_path, 60, clock=lambda: T0 + timedelta(hours=25)).run().swept == 1
    assert not leftover.exists()
