"""The local backend: jobs run on this machine through submitit, no scheduler needed.

``Local`` hands each submission to submitit's ``LocalExecutor`` at release
(``orchestrator.scheduler.local_executor``), so that a local job gets what SLURM gives it: a time
limit, and ``USR1`` that long before it (``resources.time``, the site's ``signal_before_limit_s``), on
which the job saves its state. The planes of an array run in turn, the workers of a search at once.
The job's records are the registry's as on SLURM, and ``local_state.json`` is the scheduler's word,
read back checked (``read_local_state``), so a local job's end shows at once. Its ID is orch's own
(``local-<time>-<hex>``), never submitit's pid. ``orch cancel`` signals only the process that the
user's own record names, after checking that it is that job's task (``is_runner``).

``Debug`` (``orch submit --debug``) runs the job in this process through submitit's ``DebugExecutor``,
trials in-process too, stopping in the debugger at the first exception; ``orch sync`` never makes a
new attempt of it.

This module imports submitit only where a job is started, never for status or sync.
"""

from __future__ import annotations

import os
import signal
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.core import attempts, jobenv
from orchestrator.core.clock import now
from orchestrator.core.errors import InputError, OrchError
from orchestrator.core.files import OWNER_FILE_MODE, write_json_atomic
from orchestrator.core.records import read_optional_record, read_record
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
from orchestrator.scheduler.local_executor import executor_folder, run_in_process, start
from orchestrator.scheduler.observe import search_observation, with_own_end

SOURCE = "the local executor's record"
FIELDS: dict[str, tuple[type, ...]] = {  # what local_state.json holds (local_executor writes it), by type
    "host": (str,), "runner_pid": (int,), "runner_started": (int,), "pid": (int,), "started_at": (str,),
    "ended_at": (str,), "exit_code": (int,), "cancelled": (bool,), "timed_out": (bool,), "max_rss_mb": (int, float),
    "error": (str,), "cores": (list,)}


def read_local_state(paths: JobPaths) -> dict[str, Any] | None:
    """The local executor's record of the job (None before it started it), every value of the type its
    writer gives it: one that is not is an ``OrchError`` naming the file and the key."""
    try:
        state = read_record(paths.local_state)
    except FileNotFoundError:
        return None
    for key, kinds in FIELDS.items():
        value = state.get(key)
        if value is not None and (not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool))):
            raise OrchError(f"{paths.local_state}: {key}: expected {' or '.join(k.__name__ for k in kinds)}")
    for key in ("started_at", "ended_at"):
        try:
            state.get(key) and datetime.fromisoformat(state[key])
        except ValueError:
            raise OrchError(f"{paths.local_state}: {key}: expected an ISO time") from None
    return state


def is_runner(paths: JobPaths, state: dict[str, Any]) -> bool:
    """Whether the process ``state`` (the job's ``local_state.json``) names is the local executor's task
    of that job, here, for this user: the record is this user's and no one else may change it, the
    process is the one recorded (pid and start time) and a submitit task of the job's submission (its
    folder in its command line). A process is never signalled on the word of a group-writable file."""
    found = os.lstat(paths.local_state)
    if found.st_uid != os.getuid() or found.st_mode & 0o022:
        return False
    pid = state.get("runner_pid") or 0
    if not jobenv.still_runs(pid, state.get("runner_started")):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    base = paths.job_id.split("_")[0]  # the submission's own ID: an array's or a search's base, else the job's
    return b"submitit.core._submit" in argv and str(executor_folder(base)).encode() in argv


def local_observation(paths: JobPaths) -> Observation:
    """A local job's state from its ``local_state.json``."""
    state = read_local_state(paths)
    if state is None:
        return Observation(JobState.PENDING, "waiting for the local executor", "local")
    if state.get("exit_code") is not None:
        return _ended(state)
    if state.get("host") != socket.gethostname():
        return Observation(JobState.UNKNOWN, f"running on {state.get('host')}; cannot check from here", "local")
    if jobenv.still_runs(state.get("runner_pid") or 0, state.get("runner_started")):
        return Observation(JobState.RUNNING, "", "local", start=state.get("started_at"))
    if state.get("timed_out"):
        return Observation(JobState.TIMEOUT, "killed at its time limit, its state not saved in time", "local",
                           start=state.get("started_at"))
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
    """This machine, through submitit's ``LocalExecutor`` (``orchestrator.scheduler.local_executor``)."""

    name = "local"
    title = "the local executor"
    poll_s = 1.0  # a local job's records are on this machine: cheap to read often
    recovers = True

    def submit_held(self, batch: Batch) -> str:
        return new_local_job_id()  # nothing runs before release

    def release(self, batch: Batch, base: str, groups: list[list[str]]) -> None:
        start(batch, base, groups)

    def withdraw(self, base: str) -> None:
        pass  # nothing was started

    def run_here(self) -> None:
        pass  # submitit's processes run the jobs

    def cancel(self, job_id: str, tasks: list[JobPaths]) -> str:
        """Jobs not started yet (the later planes of an array) are recorded cancelled first, so that none
        of them starts when the one running now ends; then the running ones are stopped."""
        waiting = [paths for paths in tasks if read_local_state(paths) is None]
        for paths in waiting:
            write_json_atomic(paths.local_state, {"host": socket.gethostname(), "ended_at": now(),
                                                  "exit_code": -signal.SIGTERM, "cancelled": True}, OWNER_FILE_MODE)
        sent, refused = [], []
        for paths in (p for p in tasks if p not in waiting):
            try:
                sent.append(self._stop(paths))
            except OrchError as exc:  # ended, not to be signalled from here, or its record unreadable
                refused.append(str(exc))
        if not (sent or waiting):
            raise InputError(f"job {job_id}", "; ".join(refused))
        return "\n".join([*([f"stop sent to the local executor's task of {', '.join(sent)}; orch sync records it"]
                            if sent else []),
                           *([f"cancelled before it started: {', '.join(p.job_id for p in waiting)}"] if waiting else []),
                           *(f"not cancelled: {why}" for why in refused)])

    def _stop(self, paths: JobPaths) -> str:
        """Send SIGTERM to the local executor's task of the job of ``paths``; its ID."""
        state = read_local_state(paths)
        if state is None or state.get("exit_code") is not None:
            raise InputError(paths.job_id, "the local executor is not running it")
        if state.get("host") != socket.gethostname():
            raise InputError(paths.job_id, f"runs on {state.get('host')}; cancel it there")
        owner = os.lstat(paths.local_state).st_uid
        if owner != os.getuid():
            raise InputError(paths.job_id, f"its local executor runs as uid {owner}; only that user can cancel it")
        if not is_runner(paths, state):
            raise InputError(paths.job_id, f"process {state.get('runner_pid')} is not its local executor's task "
                                           "(any more); nothing sent")
        try:
            os.kill(state["runner_pid"], signal.SIGTERM)
        except (ProcessLookupError, PermissionError) as exc:
            raise InputError(paths.job_id, f"process {state['runner_pid']}: {exc.strerror}; nothing sent") from None
        return paths.job_id

    def observe(self, jobs: list[tuple[JobPaths, dict[str, Any]]]) -> Observed:
        seen = Observed()
        for paths, _ in jobs:
            try:
                seen.jobs[paths.job_id] = local_observation(paths)
            except OrchError as exc:  # this job is skipped this tick, not the others
                seen.problems.append(f"skipped {paths.job_id}: {exc}")
        return seen

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

    def release(self, batch: Batch, base: str, groups: list[list[str]]) -> None:
        self.released += [(batch, base, job_id) for group in groups for job_id in group]

    def run_here(self) -> None:
        for batch, base, job_id in self.released:
            run_in_process(batch, base, job_id, self.trials)

    def cancel(self, job_id: str, tasks: list[JobPaths]) -> str:
        raise InputError(f"job {job_id}", "a debugging run (orch submit --debug) runs in its orch command: stop it "
                                          "there with Ctrl-C")
