"""The local backend: jobs run on this machine through submitit, no scheduler needed.

``Local`` hands each submission to submitit's ``LocalExecutor`` at release, so that a local job gets
what SLURM gives it: a time limit, and ``USR1`` that long before it (``resources.time``, the site's
``signal_before_limit_s``), on which the job saves its state. The tasks of one submission (the planes
of an array, the workers of a search) run at once, each pinned to its share of this machine's cores.
submitit keeps its pickled task and its own logs in a folder private to the user, outside the
registry (``executor_folder``); the job's records are the registry's as on SLURM, and
``local_state.json`` (``orchestrator.scheduler.local_task``) is the scheduler's word, so a local job's
end shows at once. Its ID is orch's own (``local-<time>-<hex>``), never submitit's pid.

``Debug`` (``orch submit --debug``) runs the job in this process through submitit's ``DebugExecutor``,
trials in-process too, stopping in the debugger at the first exception; ``orch sync`` never makes a
new attempt of it.

This module imports submitit only where a job is started, never for status or sync.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from orchestrator.core import attempts, jobenv
from orchestrator.core.errors import InputError
from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths, new_local_job_id
from orchestrator.core.state import (
    EXIT_INTERRUPTED,
    TERMINAL_NAMES,
    JobState,
    Observation,
    Shown,
)
from orchestrator.core.units import mib_to_bytes
from orchestrator.scheduler.backend import Batch, Observed, shown_state
from orchestrator.scheduler.local_task import InProcessJob, LocalTask
from orchestrator.scheduler.observe import search_observation, with_own_end

SOURCE = "the local executor's record"


def executor_folder(base: str) -> Path:
    """submitit's folder for the local submission ``base`` (its pickled task, its own logs): under the
    user's cache, private to the user, never in the group's registry."""
    private = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orch" / "local"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(private, 0o700)  # whatever the umask made of it
    return private / base


def _submitit() -> ModuleType:
    """submitit, imported without its logging set-up: on import it reconfigures the logging of the whole
    process (``dictConfig``), which closes the handlers others made (absl's closes the stream it held)."""
    saved = os.environ.get("SUBMITIT_LOG_LEVEL")
    os.environ["SUBMITIT_LOG_LEVEL"] = "NOCONFIG"
    try:
        import submitit
    finally:
        if saved is None:
            del os.environ["SUBMITIT_LOG_LEVEL"]
        else:
            os.environ["SUBMITIT_LOG_LEVEL"] = saved
    return submitit


def core_shares(cores: list[int], tasks: int) -> list[list[int]]:
    """The cores of each of ``tasks`` tasks run at once: an equal share of ``cores`` each (one core
    each, in turn, when there are more tasks than cores)."""
    if tasks >= len(cores):
        return [[cores[i % len(cores)]] for i in range(tasks)]
    size = len(cores) // tasks
    return [cores[i * size:(i + 1) * size] for i in range(tasks)]


@contextmanager
def detached() -> Iterator[None]:
    """SIGINT and SIGHUP ignored while submitit starts its processes, which keep that: Ctrl-C on
    ``orch submit --wait``, or closing the terminal, leaves the job running (as ``nohup``)."""
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def is_runner(state: dict[str, Any], base: str) -> bool:
    """Whether the process ``local_state.json`` names runs the submission ``base`` here: the same process
    (pid and start time), and a submitit task of that submission's folder. The registry is
    group-writable: a process is never signalled on the word of a file alone."""
    pid = int(state.get("runner_pid") or 0)
    if not jobenv.still_runs(pid, state.get("runner_started")):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"submitit.core._submit" in argv and str(executor_folder(base)).encode() in argv


def local_observation(paths: JobPaths) -> Observation:
    """A local job's state from its ``local_state.json``."""
    state = read_optional_record(paths.local_state)
    if state is None:
        return Observation(JobState.PENDING, "waiting for the local executor", "local")
    if "exit_code" in state:
        return _ended(state)
    if state.get("host") != socket.gethostname():
        return Observation(JobState.UNKNOWN, f"running on {state.get('host')}; cannot check from here", "local")
    if jobenv.still_runs(int(state.get("runner_pid") or 0), state.get("runner_started")):
        return Observation(JobState.RUNNING, "", "local", start=state.get("started_at"))
    return Observation(JobState.NODE_FAIL, "the local executor's task died without recording an exit", "local")


def _ended(state: dict[str, Any]) -> Observation:
    code = state["exit_code"]
    if state.get("cancelled"):
        job_state = JobState.CANCELLED
    elif state.get("timed_out"):
        job_state = JobState.TIMEOUT
    elif code == 0:
        job_state = JobState.COMPLETED
    elif code == EXIT_INTERRUPTED:
        job_state = JobState.PREEMPTED
    else:
        job_state = JobState.FAILED
    started, ended = state.get("started_at"), state.get("ended_at")
    elapsed = ((datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
               if started and ended else None)
    rss = mib_to_bytes(state["max_rss_mb"]) if state.get("max_rss_mb") is not None else None
    return Observation(job_state, "" if code == 0 else f"exit code {code}", "local", code, None, rss, elapsed, None,
                       started, ended)


class Local:
    """This machine, through submitit's ``LocalExecutor``."""

    name = "local"
    title = "the local executor"
    poll_s = 1.0  # a local job's records are on this machine: cheap to read often
    recovers = True

    def submit_held(self, batch: Batch) -> str:
        return new_local_job_id()  # nothing runs before release

    def release(self, batch: Batch, base: str, job_ids: list[str]) -> None:
        executor = _submitit().LocalExecutor(folder=executor_folder(base))
        executor.update_parameters(timeout_min=batch.timeout_min, signal_delay_s=batch.signal_s,
                                   tasks_per_node=len(job_ids), gpus_per_node=batch.gpus)
        cores = core_shares(sorted(os.sched_getaffinity(0)), len(job_ids)) if len(job_ids) > 1 else [[]]
        with detached():
            executor.submit(LocalTask(batch.root, batch.script, tuple(job_ids), tuple(tuple(c) for c in cores)))

    def withdraw(self, base: str) -> None:
        pass  # nothing was started

    def run_here(self) -> None:
        pass  # submitit's processes run the jobs

    def cancel(self, job_id: str, tasks: list[JobPaths]) -> str:
        sent, refused = [], []
        for paths in tasks:
            state = read_optional_record(paths.local_state)
            base = (read_optional_record(paths.submission) or {}).get("array_job_id") or paths.job_id
            if state is None or "exit_code" in state:
                refused.append(f"{paths.job_id}: the local executor is not running it")
            elif state.get("host") != socket.gethostname():
                refused.append(f"{paths.job_id}: runs on {state.get('host')}; cancel it there")
            elif not is_runner(state, base):
                refused.append(f"{paths.job_id}: process {state.get('runner_pid')} is not its local executor's "
                               "task (any more); nothing sent")
            else:
                os.kill(int(state["runner_pid"]), signal.SIGTERM)
                sent.append(paths.job_id)
        if not sent:
            raise InputError(f"job {job_id}", "; ".join(refused))
        return "\n".join([f"stop sent to the local executor's task of {', '.join(sent)}; orch sync records it",
                          *(f"not cancelled: {why}" for why in refused)])

    def observe(self, jobs: list[tuple[JobPaths, dict[str, Any]]]) -> Observed:
        return Observed({paths.job_id: local_observation(paths) for paths, _ in jobs})

    def shown(self, paths: JobPaths, submission: dict[str, Any], record: dict[str, Any] | None) -> Shown:
        """The executor's record, so that the end shows at once; once sync settled the job, sync's
        record (the same state, and its recovery)."""
        if record and "recovery" in record:
            return Shown(record["state"], record.get("reason") or "", record.get("source") or SOURCE)
        if submission.get("worker_ids"):
            newest = [attempts.newest(JobPaths(paths.root, w)) for w in attempts.workers(paths)]
            states = [shown_state(p, read_optional_record(p.submission) or {}, read_optional_record(p.scheduler)).state
                      for p in newest]
            seen = search_observation(states, attempts.search_result(paths) is not None)
        else:
            seen = with_own_end(paths, local_observation(paths))
        return Shown(seen.state.value, seen.reason, SOURCE, live=True)

    def end_state(self, paths: JobPaths, submission: dict[str, Any]) -> str | None:
        state = self.shown(paths, submission, read_optional_record(paths.scheduler)).state
        return state if state in TERMINAL_NAMES else None


class Debug(Local):
    """This process, through submitit's ``DebugExecutor``: the job and its trials, at most ``trials``
    of them (0: all), an exception opening the debugger."""

    name = "debug"
    title = "this process (debug)"
    recovers = False  # a debugging run is run again by hand, never by orch sync

    def __init__(self, trials: int = 0) -> None:
        self.trials = trials
        self.released: list[tuple[Batch, str, str]] = []  # (batch, base, job ID) to run here

    def release(self, batch: Batch, base: str, job_ids: list[str]) -> None:
        self.released += [(batch, base, job_id) for job_id in job_ids]

    def run_here(self) -> None:
        for batch, base, job_id in self.released:
            executor = _submitit().DebugExecutor(folder=executor_folder(base))
            executor.submit(InProcessJob(batch.root, batch.command, job_id, self.trials)).result()
