"""The local backend's word on its jobs (local_state.json, read back checked) and the only process it
signals: the user's own job's submitit task, named by the user's own record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.core import jobenv
from orchestrator.core.errors import InputError, OrchError
from orchestrator.core.files import OWNER_FILE_MODE, write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.core.state import JobState
from orchestrator.scheduler.local_backend import Local, local_observation
from orchestrator.track.cancel import cancel

JOB = "local-20261121T120000-abcdef"
ENDED = {"started_at": "2026-11-21T12:00:00+00:00", "ended_at": "2026-11-21T12:01:30+00:00"}


def recorded(root: Path, state: dict[str, Any], mode: int = OWNER_FILE_MODE, job_id: str = JOB) -> JobPaths:
    """The local job ``job_id`` with ``local_state.json`` holding ``state`` (on this host)."""
    paths = JobPaths(root, job_id)
    if not paths.dir.exists():
        create_entry(root, job_id, {"submission.json": json.dumps(
            {"scheduler": "local", "submitted_at": ENDED["started_at"], "request": {"mem_gb": 2}})})
    write_json_atomic(paths.local_state, {"host": socket.gethostname(), **state}, mode)
    return paths


@pytest.mark.parametrize("local_state, state", [
    ({"exit_code": 0, **ENDED}, JobState.COMPLETED), ({"exit_code": 1, **ENDED}, JobState.FAILED),
    ({"exit_code": 75, **ENDED}, JobState.PREEMPTED), ({"exit_code": 75, "cancelled": True, **ENDED}, JobState.CANCELLED),
    ({"exit_code": 75, "timed_out": True, **ENDED}, JobState.TIMEOUT),  # stopped by submitit's signal before the limit
    ({"runner_pid": 2**22 + 7, "runner_started": 1}, JobState.NODE_FAIL),  # no such process: it died without a word
    ({"runner_pid": 2**22 + 7, "runner_started": 1, "timed_out": True}, JobState.TIMEOUT),  # killed at the limit
    ({"runner_pid": os.getpid(), "runner_started": 1}, JobState.NODE_FAIL),  # a live process, not the task (reused pid)
    ({"runner_pid": "stand-in"}, JobState.RUNNING),
])
def test_what_the_executors_record_says(local_state: dict, state: JobState, tmp_path: Path,
                                        executor_task: Callable[[str], dict[str, Any]]) -> None:
    if local_state.get("runner_pid") == "stand-in":
        local_state = executor_task(JOB)
    observed = local_observation(recorded(tmp_path, local_state))
    assert observed.state is state
    assert observed.elapsed_s == (90 if "exit_code" in local_state else None)


@pytest.mark.parametrize("bad, key", [({"runner_pid": "1"}, "runner_pid"), ({"exit_code": True}, "exit_code"),
                                      ({"exit_code": 0, "ended_at": "yesterday"}, "ended_at"),
                                      ({"exit_code": 0, "max_rss_mb": "1"}, "max_rss_mb")])
def test_a_record_edited_into_nonsense_is_one_clear_error_and_sync_goes_on(tmp_path: Path, bad: dict[str, Any],
                                                                          key: str) -> None:
    paths = recorded(tmp_path, bad)
    with pytest.raises(OrchError, match=f"local_state.json: {key}: expected"):
        local_observation(paths)
    fine = recorded(tmp_path, {"exit_code": 0, **ENDED}, job_id="local-20261121T120000-bbbbbb")
    seen = Local().observe([(paths, {}), (fine, {})])
    assert list(seen.jobs) == [fine.job_id] and seen.problems[0].startswith(f"skipped {JOB}: ")


def test_cancel_signals_only_the_jobs_own_executor_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      executor_task: Callable[[str], dict[str, Any]]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pretender in ({"runner_pid": bystander.pid, "runner_started": jobenv.process_start(bystander.pid)},
                          executor_task("local-20261121T120000-fedcba")):  # any process of mine; another job's task
            recorded(tmp_path, pretender)
            with pytest.raises(InputError, match="is not its local executor's task"):
                cancel(tmp_path, JOB)
        task = executor_task(JOB)
        recorded(tmp_path, task, mode=0o664)  # the true task, but in a record any member could have written
        with pytest.raises(InputError, match="is not its local executor's task"):
            cancel(tmp_path, JOB)
        assert bystander.poll() is None
        recorded(tmp_path, task)
        assert "stop sent to the local executor's task of " + JOB in cancel(tmp_path, JOB)
        assert os.waitpid(task["runner_pid"], 0)[1] == signal.SIGTERM
    finally:
        bystander.kill()


def test_cancelling_a_local_array_stops_the_running_plane_and_the_later_ones_never_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor_task: Callable[[str], dict[str, Any]]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    task = executor_task(JOB)  # plane 0 runs; plane 1 waits for it to end
    running = recorded(tmp_path, task, job_id=f"{JOB}_0")
    waiting = JobPaths(tmp_path, f"{JOB}_1")
    create_entry(tmp_path, waiting.job_id, {"submission.json": running.submission.read_text()})
    said = cancel(tmp_path, JOB)
    assert f"stop sent to the local executor's task of {JOB}_0" in said
    assert f"cancelled before it started: {JOB}_1" in said
    assert os.waitpid(task["runner_pid"], 0)[1] == signal.SIGTERM
    assert local_observation(waiting).state is JobState.CANCELLED  # and its task, when its turn comes, does not run it
