"""The local executor, on submitit: how a local submission is started, and what its jobs run.

``start`` hands the first group of a submission's jobs to submitit's ``LocalExecutor`` (the planes of
an array are groups of one, run in turn; the workers of a search are one group, run at once, each
pinned to its share of the cores), with the submission's time limit and the signal before it. Each
task of the group runs a ``LocalTask``: the job's batch script with ``bash``, as SLURM would, in the
submitter's working directory, the script handed over at submit time (never read back from the
group-writable job directory), its output appended to the job's log, ``ORCH_JOB_ID`` set. The task
stands for the scheduler: it writes the job's ``local_state.json`` (readable by the group, changed by
no one else: its own pid and start, the job's, the end, the exit code, whether it was cancelled or
reached its time limit, and MaxRSS), passes submitit's time-limit signal on as SLURM's ``USR1`` and
SIGTERM (``orch cancel``) as it is, and, the last of its group to end, starts the next group. The
job dies with its task (``jobenv.die_with_parent``).

``InProcessJob`` (``DebugExecutor``, ``orch submit --debug``) runs the job's command in this process,
its trials too, so that an exception stops in the debugger where it was raised.

submitit keeps its pickled task and its own logs in ``executor_folder``: under the user's cache,
private to the user, never in the registry; folders a week old are removed when the next job starts.
"""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from orchestrator.core import jobenv
from orchestrator.core.clock import now
from orchestrator.core.errors import OrchError
from orchestrator.core.files import OWNER_FILE_MODE, open_file, write_json_atomic
from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths
from orchestrator.core.units import peak_rss_mib
from orchestrator.scheduler.backend import Batch

TIME_LIMIT_SIGNAL = signal.SIGUSR2  # what submitit's local controller sends before the time limit
KEEP_S = 7 * 86400  # an executor folder this old is removed: its task read its pickle long ago


def _orch_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orch"


def executor_folder(base: str) -> Path:
    """submitit's folder for the local submission ``base`` (its pickled task, its own logs), in
    ``<cache>/orch/local`` (made by ``private_folder``)."""
    return _orch_cache() / "local" / base


def private_folder() -> Path:
    """``<cache>/orch/local``, made the user's own (mode 0700, whatever the umask), refused when it (or
    ``<cache>/orch``) is a link or another user's."""
    orch = _orch_cache()
    for folder in (orch, orch / "local"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = os.lstat(folder)
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
            raise OrchError(f"{folder}: not a folder of this user's; the local executor keeps its pickled "
                            "tasks there, so it must be (set XDG_CACHE_HOME to a folder of your own)")
        os.chmod(folder, 0o700)
    return orch / "local"


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
def launching() -> Iterator[None]:
    """While submitit starts its processes, which keep it: SIGINT and SIGHUP ignored (Ctrl-C on ``orch
    submit --wait``, or closing the terminal, leaves the job running, as ``nohup``), and
    ``PYTHONSAFEPATH`` set (no module is imported from the submitter's working directory)."""
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGHUP)}
    safe_path = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        if safe_path is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = safe_path


def start(batch: Batch, base: str, groups: list[list[str]]) -> None:
    """Start the first of ``groups`` (the job IDs of submission ``base``) on submitit's LocalExecutor;
    the last of its tasks to end starts the next."""
    private = private_folder()
    for old in private.iterdir():
        if time.time() - old.lstat().st_mtime > KEEP_S:
            shutil.rmtree(old, ignore_errors=True)
    group = groups[0]
    executor = _submitit().LocalExecutor(folder=executor_folder(base))
    executor.update_parameters(timeout_min=batch.timeout_min, signal_delay_s=batch.signal_s,
                               tasks_per_node=len(group), gpus_per_node=batch.gpus)
    cores = core_shares(sorted(os.sched_getaffinity(0)), len(group)) if len(group) > 1 else [[]]
    task = LocalTask(batch, base, tuple(group), tuple(tuple(c) for c in cores), tuple(map(tuple, groups[1:])))
    with launching():
        executor.submit(task)


def run_in_process(batch: Batch, base: str, job_id: str, trials: int) -> int:
    """Run the job ``job_id`` of submission ``base`` in this process through submitit's DebugExecutor
    (``InProcessJob``); its exit code. An exception stops in pdb, then goes on to the caller."""
    private_folder()
    executor = _submitit().DebugExecutor(folder=executor_folder(base))
    return executor.submit(InProcessJob(batch.root, batch.command, job_id, trials)).result()


def _me() -> dict[str, Any]:
    """Who runs the job: this process, named for good by its pid and start time, and its host."""
    return {"runner_pid": os.getpid(), "runner_started": jobenv.process_start(os.getpid()),
            "host": socket.gethostname()}


def _record(paths: JobPaths, state: dict[str, Any]) -> None:
    write_json_atomic(paths.local_state, state, OWNER_FILE_MODE)


@dataclass(frozen=True)
class LocalTask:
    """What the tasks of one group run: task ``i`` the job ``job_ids[i]`` on ``cores[i]``; ``then``: the
    groups of the submission still to start, in turn."""

    batch: Batch
    base: str
    job_ids: tuple[str, ...]
    cores: tuple[tuple[int, ...], ...]
    then: tuple[tuple[str, ...], ...]

    def __call__(self) -> int:
        rank = _submitit().JobEnvironment().global_rank
        paths = JobPaths(self.batch.root, self.job_ids[rank])
        if (read_optional_record(paths.local_state) or {}).get("cancelled"):  # by orch cancel, before it started
            code = -signal.SIGTERM
        else:
            code = run_script(paths, self.batch.script, self.cores[rank])
        ended = [read_optional_record(JobPaths(self.batch.root, j).local_state) or {} for j in self.job_ids]
        if self.then and all("exit_code" in state for state in ended) and self._first_to_see_the_end():
            start(self.batch, self.base, [list(group) for group in self.then])
        return code

    def _first_to_see_the_end(self) -> bool:
        """Whether this task is the one (of those ending together) that starts the next group."""
        try:
            os.close(os.open(executor_folder(self.base) / f"next-{len(self.then)}", os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        return True


def run_script(paths: JobPaths, script: str, cores: tuple[int, ...]) -> int:
    """Run the job of ``paths`` with ``script``, recording its run in ``local_state.json``; its exit code."""
    try:
        log = open_file(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "the job's log")
    except OrchError as exc:  # this job cannot run; its record says why
        _record(paths, {**_me(), "ended_at": now(), "exit_code": 1, "cancelled": False, "error": str(exc)})
        return 1

    def start_job() -> None:
        jobenv.die_with_parent()
        if cores:
            os.sched_setaffinity(0, cores)

    try:
        job = subprocess.Popen(["bash", "-c", script, str(paths.script)], stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, env=jobenv.local_task_env(paths.job_id),
                               preexec_fn=start_job)
    finally:
        os.close(log)
    state = {**_me(), "pid": job.pid, "started_at": now(), "cores": list(cores), "cancelled": False,
             "timed_out": False}

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == TIME_LIMIT_SIGNAL:  # said at once: should the job outlive its limit, submitit kills us
            state["timed_out"] = True
            _record(paths, state)
        state["cancelled"] |= signum == signal.SIGTERM
        job.send_signal(signal.SIGUSR1 if signum == TIME_LIMIT_SIGNAL else signum)

    for signum in (signal.SIGTERM, signal.SIGUSR1, TIME_LIMIT_SIGNAL):
        signal.signal(signum, forward)  # before the record names this process: orch cancel finds it there
    _record(paths, state)
    _, status, usage = os.wait4(job.pid, 0)
    _record(paths, {**state, "ended_at": now(), "exit_code": os.waitstatus_to_exitcode(status),
                    "max_rss_mb": peak_rss_mib(usage)})
    return os.waitstatus_to_exitcode(status)


@dataclass(frozen=True)
class InProcessJob:
    """The job ``job_id`` run in this process with its ``command`` (module and arguments, as the batch
    script would ``exec`` it), trials in-process, at most ``trials`` of them (0: all). What the job sets
    for itself (its signal handlers, its environment, ``sys.argv``) is put back when it ends."""

    root: Path
    command: tuple[str, ...]
    job_id: str
    trials: int

    def __call__(self) -> int:
        paths = JobPaths(self.root, self.job_id)
        state = {**_me(), "pid": os.getpid(), "started_at": now(), "cores": sorted(os.sched_getaffinity(0))}
        _record(paths, state)
        module, *args = self.command
        saved_argv, saved_env = sys.argv, dict(os.environ)
        saved_handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
        sys.argv = [module, *args, "--in-process", *(["--trials", str(self.trials)] if self.trials else [])]
        os.environ[jobenv.LOCAL_JOB_ID] = self.job_id
        code = 1  # unless the job exits: an exception goes on to the debugger
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as done:  # the job's ``sys.exit(main(...))``
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
        finally:
            sys.argv = saved_argv
            os.environ.clear()
            os.environ.update(saved_env)
            for signum, handler in saved_handlers.items():
                signal.signal(signum, handler)
            _record(paths, {**state, "ended_at": now(), "exit_code": code, "cancelled": False, "timed_out": False})
        return code
