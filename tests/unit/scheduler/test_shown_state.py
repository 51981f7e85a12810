"""The state `orch status` and the report show without `orch sync`: a local job's end at once, from its
runner's record; a SLURM job that sync has not seen as UNSYNCED, with what its own records say."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.cli import main
from orchestrator.core.files import write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
LOCAL = "local-20261202T080000-aaaaaa"


def entry(root: Path, job_id: str, scheduler: str) -> JobPaths:
    submission = {"scheduler": scheduler, "submitted_at": T0.isoformat(), "request": {"mem_gb": 8},
                  "config": {"label": "x_v1", "name": "x"}, "attempt": 1, "estimate": {"peak_gb": 6}}
    return create_entry(root, job_id, {"submission.json": json.dumps(submission),
                                       "config.json": json.dumps({"model_parameters": {"hp_max_evals": 4}})})


def status(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--registry", str(root), "status", *args])
    return code, capsys.readouterr().out


def ran(paths: JobPaths, runner: dict[str, Any], **end: object) -> None:
    """The local executor's record of a job it started (and, with ``end``, saw end)."""
    write_json_atomic(paths.local_state, {**runner, "host": socket.gethostname(), "pid": 1,
                                          "started_at": T0.isoformat(), **end})


@pytest.mark.parametrize(("end", "state"), [({"exit_code": 0, "cancelled": False}, "COMPLETED"),
                                            ({"exit_code": 1, "cancelled": False}, "FAILED"),
                                            ({"exit_code": -15, "cancelled": True}, "CANCELLED")])
def test_a_local_job_shows_its_end_at_once_with_no_sync(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        end: dict[str, object], state: str,
                                                        executor_task: Callable[[str], dict[str, Any]]) -> None:
    paths = entry(tmp_path, LOCAL, "local")
    runner = executor_task(LOCAL)
    ran(paths, runner)
    code, out = status(tmp_path, capsys, LOCAL)
    assert code == 0 and "state    RUNNING  (the local executor's record)" in out
    ran(paths, runner, ended_at=T0.isoformat(), **end)
    code, out = status(tmp_path, capsys, LOCAL)
    assert code == 0 and f"state    {state}" in out and "(the local executor's record)" in out
    code, out = status(tmp_path, capsys, "--json")
    assert [(r["job_id"], r["state"]) for r in json.loads(out)] == [(LOCAL, state)]
    code, out = status(tmp_path, capsys, "--state", "PENDING", "--json")
    assert json.loads(out) == []  # a finished local job is never listed as pending


def test_a_slurm_job_sync_has_not_seen_is_unsynced_and_says_what_its_own_records_say(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = entry(tmp_path, "500", "slurm")
    code, out = status(tmp_path, capsys, "500")
    assert code == 0 and "state    UNSYNCED: orch sync has not seen this job yet" in out and "own records" not in out
    write_json_atomic(paths.run, {"status": "completed", "started_at": T0.isoformat()})
    code, out = status(tmp_path, capsys, "500")
    assert "job      COMPLETED by its own records; not yet confirmed by the scheduler (orch sync)" in out
    code, out = status(tmp_path, capsys, "--json")
    assert [(r["job_id"], r["state"]) for r in json.loads(out)] == [("500", "UNSYNCED")]
    write_json_atomic(paths.scheduler, {"state": "RUNNING", "reason": "", "source": "sacct"})
    code, out = status(tmp_path, capsys, "500")
    assert "state    RUNNING" in out and "not yet confirmed by the scheduler" in out
    write_json_atomic(paths.scheduler, {"state": "COMPLETED", "reason": "", "source": "sacct"})
    code, out = status(tmp_path, capsys, "500")
    assert "state    COMPLETED" in out and "not yet confirmed" not in out
