"""The local backend's word on its jobs (local_state.json) and the only process it signals."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.core import jobenv
from orchestrator.core.files import write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.core.state import JobState
from orchestrator.scheduler.local_backend import local_observation


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
