"""The local executor: runs a job's batch script on this machine, no scheduler needed.

``launch`` starts a detached runner (``python -m orchestrator.scheduler.local``) that runs
groups of tasks one group after another with ``bash`` and the job's ``ORCH_JOB_ID``,
output appended to each task's log. Like ``sbatch``, the runner takes the batch script
when the job is submitted (on its stdin) and runs that text, in the submitter's working
directory: a group member who rewrites ``job.sbatch`` or plants a ``jobs/`` package in
the job directory changes nothing that runs. The tasks of one group (the workers of one
search) run at once, each pinned to its share of this machine's cores, so that their
TensorFlow threads do not fight over the same ones. The runner is the local "scheduler": it alone
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

from orchestrator.core.errors import OrchError
from orchestrator.core.files import open_file, write_json_atomic
from orchestrator.core.registry import JobPaths
from orchestrator.core.units import peak_rss_mib


def task_env(job_id: str) -> dict[str, str]:
    """The environment of a local task: ours without SLURM's job variables, plus ``ORCH_JOB_ID``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["ORCH_JOB_ID"] = job_id
    return env


def is_runner(pid: int, job_id: str) -> bool:
    """Whether ``pid`` is the local runner of ``job_id`` (the registry is group-writable: never signal
    a process on the word of a file alone)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"orchestrator.scheduler.local" in argv and any(job_id.encode() in arg.split(b",") for arg in argv)


def launch(root: Path, groups: list[list[str]], script: str) -> subprocess.Popen[bytes]:
    """Start the detached runner for ``groups`` of job IDs, each task running ``script`` (the batch
    script validated at submit time, handed over in memory, never read back from the group-writable
    job directory); the caller may ``wait()`` on it (``--wait``)."""
    argv = [sys.executable, "-m", "orchestrator.scheduler.local", str(root), *(",".join(group) for group in groups)]
    runner = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    assert runner.stdin is not None
    with runner.stdin:
        runner.stdin.write(script.encode())
    return runner


def core_shares(cores: list[int], tasks: int) -> list[list[int]]:
    """The cores of each of ``tasks`` tasks run at once: an equal share of ``cores`` each (one core
    each, in turn, when there are more tasks than cores)."""
    if tasks >= len(cores):
        return [[cores[i % len(cores)]] for i in range(tasks)]
    size = len(cores) // tasks
    return [cores[i * size:(i + 1) * size] for i in range(tasks)]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_tasks(root: Path, groups: list[list[str]], script: str) -> int:
    """Run ``script`` for each task, the tasks of a group at once, the groups in turn; return the first
    non-zero exit code (0 if all succeeded)."""
    current: dict[int, subprocess.Popen[bytes]] = {}
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        for proc in list(current.values()):
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGUSR1, forward)
    base = {"runner_pid": os.getpid(), "host": socket.gethostname()}
    worst = 0
    for group in groups:
        shares = core_shares(sorted(os.sched_getaffinity(0)), len(group))
        started = {}
        for job_id, cores in zip(group, shares):
            paths = JobPaths(root, job_id)
            if received:  # stopped while the group was starting: this task never runs
                write_json_atomic(paths.local_state, {**base, "ended_at": _now(), "exit_code": -signal.SIGTERM,
                                                      "cancelled": signal.SIGTERM in received})
                continue
            try:
                log = open_file(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "the job's log")
            except OrchError as exc:  # this task cannot run; the others still do
                write_json_atomic(paths.local_state, {**base, "ended_at": _now(), "exit_code": 1, "cancelled": False,
                                                      "error": str(exc)})
                worst = worst or 1
                continue
            try:
                proc = subprocess.Popen(["bash", "-c", script, str(paths.script)], stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, env=task_env(job_id),
                                        preexec_fn=(lambda c=cores: os.sched_setaffinity(0, c)) if len(group) > 1
                                        else None)
            finally:
                os.close(log)
            current[proc.pid] = proc
            started[proc.pid] = (paths, {**base, "pid": proc.pid, "started_at": _now(), "cores": cores})
            write_json_atomic(paths.local_state, started[proc.pid][1])
        while started:
            pid, status, usage = os.wait4(-1, 0)
            if pid not in started:
                continue
            paths, state = started.pop(pid)
            current.pop(pid).returncode = code = os.waitstatus_to_exitcode(status)
            write_json_atomic(paths.local_state, {**state, "ended_at": _now(), "exit_code": code,
                                                  "cancelled": signal.SIGTERM in received,
                                                  "max_rss_mb": peak_rss_mib(usage)})
            worst = worst or code
    return worst


if __name__ == "__main__":
    sys.exit(run_tasks(Path(sys.argv[1]), [group.split(",") for group in sys.argv[2:]], sys.stdin.read()))
