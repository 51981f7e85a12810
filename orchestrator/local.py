"""The local executor: runs a job's batch script on this machine, no scheduler needed.

``launch`` starts a detached runner (``python -m orchestrator.local``) that runs
the tasks one after another with ``bash`` and the job's ``ORCH_JOB_ID``, output
appended to each task's log. The runner is the local "scheduler": it alone
writes each task's ``local_state.json`` (its own and the task's pid, start, end,
exit code, whether it was cancelled, and the largest resident set of any process of
the task, like sacct's MaxRSS). SIGTERM (``orch cancel``) cancels the running task and
the ones not started; SIGUSR1 is passed on (the job saves its state and stops).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from orchestrator.registry import JobPaths, write_json_atomic


def task_env(job_id: str) -> dict[str, str]:
    """The environment of a local task: ours without SLURM's job variables, plus ``ORCH_JOB_ID``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["ORCH_JOB_ID"] = job_id
    return env


def launch(root: Path, job_ids: list[str]) -> subprocess.Popen[bytes]:
    """Start the detached runner for ``job_ids``; the caller may ``wait()`` on it (``--wait``)."""
    argv = [sys.executable, "-m", "orchestrator.local", str(root), *job_ids]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_tasks(root: Path, job_ids: list[str]) -> int:
    """Run each task's script in turn; return the first non-zero exit code (0 if all succeeded)."""
    current: list[subprocess.Popen[bytes]] = []
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        for proc in current:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGUSR1, forward)
    worst = 0
    for job_id in job_ids:
        paths = JobPaths(root, job_id)
        base = {"runner_pid": os.getpid(), "host": socket.gethostname()}
        if received:  # stopped before this task began
            write_json_atomic(paths.local_state, {**base, "ended_at": _now(), "exit_code": -signal.SIGTERM,
                                                  "cancelled": signal.SIGTERM in received})
            continue
        with open(paths.log, "ab") as log:
            proc = subprocess.Popen(["bash", str(paths.script)], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=task_env(job_id), cwd=paths.dir)
            current[:] = [proc]
            state = {**base, "pid": proc.pid, "started_at": _now()}
            write_json_atomic(paths.local_state, state)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = code = os.waitstatus_to_exitcode(status)
        write_json_atomic(paths.local_state, {**state, "ended_at": _now(), "exit_code": code,
                                              "cancelled": signal.SIGTERM in received,
                                              "max_rss_mb": round(usage.ru_maxrss / 1024, 1)})
        worst = worst or code
    return worst


if __name__ == "__main__":
    sys.exit(run_tasks(Path(sys.argv[1]), sys.argv[2:]))
