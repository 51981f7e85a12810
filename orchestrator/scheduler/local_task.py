"""What a job of the local backend runs, in the process submitit's executor made for it.

``LocalTask`` (``LocalExecutor``) runs the job's batch script with ``bash``, as SLURM would: in the
submitter's working directory, the script text handed over at submit time (never read back from the
group-writable job directory), its output appended to the job's log, with ``ORCH_JOB_ID`` set and
pinned to its share of the cores. It stands for the scheduler: it writes the job's
``local_state.json`` (its own pid and start, the job's pid, start, end, exit code, whether it was
cancelled or reached its time limit, and the largest resident set of any process of the job, like
sacct's MaxRSS), passes submitit's time-limit signal on as SLURM's ``USR1`` (``--signal``), and
SIGTERM (``orch cancel``) on as it is. The job dies with it (``jobenv.die_with_parent``).

``InProcessJob`` (``DebugExecutor``, ``orch submit --debug``) runs the job's command in this process,
its trials too, so that an exception stops in the debugger where it was raised.
"""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator.core import jobenv
from orchestrator.core.clock import now
from orchestrator.core.errors import OrchError
from orchestrator.core.files import open_file, write_json_atomic
from orchestrator.core.registry import JobPaths
from orchestrator.core.units import peak_rss_mib

TIME_LIMIT_SIGNAL = signal.SIGUSR2  # what submitit's local controller sends before the time limit


def _me() -> dict[str, Any]:
    """Who runs the job: this process, named for good by its pid and start time, and its host."""
    return {"runner_pid": os.getpid(), "runner_started": jobenv.process_start(os.getpid()),
            "host": socket.gethostname()}


@dataclass(frozen=True)
class LocalTask:
    """The batch script of the jobs ``job_ids``, one per task of the submitit job (task ``i`` runs
    ``job_ids[i]`` on ``cores[i]``)."""

    root: Path
    script: str
    job_ids: tuple[str, ...]
    cores: tuple[tuple[int, ...], ...]

    def __call__(self) -> int:
        import submitit

        rank = submitit.JobEnvironment().global_rank
        return run_script(JobPaths(self.root, self.job_ids[rank]), self.script, self.cores[rank])


def run_script(paths: JobPaths, script: str, cores: tuple[int, ...]) -> int:
    """Run the job of ``paths`` with ``script``, recording its run in ``local_state.json``; its exit code."""
    try:
        log = open_file(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "the job's log")
    except OrchError as exc:  # this job cannot run; its record says why
        write_json_atomic(paths.local_state, {**_me(), "ended_at": now(), "exit_code": 1, "cancelled": False,
                                              "error": str(exc)})
        return 1

    def start() -> None:
        jobenv.die_with_parent()
        if cores:
            os.sched_setaffinity(0, cores)

    try:
        job = subprocess.Popen(["bash", "-c", script, str(paths.script)], stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, env=jobenv.local_task_env(paths.job_id), preexec_fn=start)
    finally:
        os.close(log)
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        job.send_signal(signal.SIGUSR1 if signum == TIME_LIMIT_SIGNAL else signum)

    for signum in (signal.SIGTERM, signal.SIGUSR1, TIME_LIMIT_SIGNAL):
        signal.signal(signum, forward)  # before the record names this process: orch cancel finds it there
    state = {**_me(), "pid": job.pid, "started_at": now(), "cores": list(cores)}
    write_json_atomic(paths.local_state, state)
    _, status, usage = os.wait4(job.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    write_json_atomic(paths.local_state, {**state, "ended_at": now(), "exit_code": code,
                                          "cancelled": signal.SIGTERM in received,
                                          "timed_out": TIME_LIMIT_SIGNAL in received,
                                          "max_rss_mb": peak_rss_mib(usage)})
    return code


@dataclass(frozen=True)
class InProcessJob:
    """The job ``job_id`` run in this process with its ``command`` (module and arguments, as the batch
    script would ``exec`` it), trials in-process, at most ``trials`` of them (0: all)."""

    root: Path
    command: tuple[str, ...]
    job_id: str
    trials: int

    def __call__(self) -> int:
        paths = JobPaths(self.root, self.job_id)
        state = {**_me(), "pid": os.getpid(), "started_at": now(), "cores": sorted(os.sched_getaffinity(0))}
        write_json_atomic(paths.local_state, state)
        module, *args = self.command
        saved_argv, saved_env = sys.argv, os.environ.get(jobenv.LOCAL_JOB_ID)
        sys.argv = [module, *args, "--in-process", *(["--trials", str(self.trials)] if self.trials else [])]
        os.environ[jobenv.LOCAL_JOB_ID] = self.job_id
        code = 1  # unless the job exits: an exception goes on to the debugger
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as done:  # the job's ``sys.exit(main(...))``
            code = int(done.code or 0)
        finally:
            sys.argv = saved_argv
            if saved_env is None:
                os.environ.pop(jobenv.LOCAL_JOB_ID, None)
            else:
                os.environ[jobenv.LOCAL_JOB_ID] = saved_env
            write_json_atomic(paths.local_state, {**state, "ended_at": now(), "exit_code": code,
                                                  "cancelled": False, "timed_out": False})
        return code
