"""One interface to the schedulers a job runs under, and the choice between them.

``slurm_backend`` queues batch scripts with ``sbatch``; ``local_backend`` runs them on this machine
through submitit's ``LocalExecutor``, or, for ``orch submit --debug``, the job in this process through
submitit's ``DebugExecutor``. A submission names its backend (``scheduler`` in ``submission.json``);
nothing outside this package asks which one a job has: it holds a ``Backend`` and calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.core import slurm
from orchestrator.core.index import read_submission
from orchestrator.core.registry import JobPaths
from orchestrator.core.state import Observation, Shown


@dataclass(frozen=True)
class Batch:
    """What a backend runs for one submission: the batch script (handed over in memory, never read back
    from the group-writable job directory), the job's own command in it (``python -m`` runs it), the
    registry it writes into, its time limit, how long before it the job is signalled to save its
    state, and its GPUs."""

    root: Path
    script: str
    command: tuple[str, ...]
    timeout_min: int
    signal_s: int
    gpus: int


@dataclass
class Observed:
    """What one look at a backend's jobs found: an observation of each job it could see, the scheduler
    calls it made, and the problems to report."""

    jobs: dict[str, Observation] = field(default_factory=dict)
    calls: int = 0
    problems: list[str] = field(default_factory=list)


class Backend(Protocol):
    """A scheduler, as orch uses it: submit held, release (or withdraw), run here, cancel, observe, show,
    and tell when a followed search ended."""

    name: str  # the word in submission.json's "scheduler"
    title: str  # the same for people: "SLURM", "the local executor", ...
    poll_s: float | None  # how often ``orch submit --wait`` looks at its jobs (None: the user's --poll-s)
    recovers: bool  # whether ``orch sync`` makes new attempts of its ended jobs

    def submit_held(self, batch: Batch) -> str:
        """Queue ``batch`` so that it cannot start yet; its job ID (an array's base ID)."""

    def release(self, batch: Batch, base: str, groups: list[list[str]]) -> None:
        """Let the held ``base`` start: its tasks are the job IDs of ``groups``, all recorded now; the
        jobs of a group may run at once (a search's workers), the groups run in turn (an array's
        planes) where the scheduler does not run them side by side."""

    def withdraw(self, base: str) -> None:
        """Take back a held submission whose recording failed."""

    def run_here(self) -> None:
        """Run the released jobs in this process, for a backend that runs them here (the debug run);
        the others run them elsewhere, and this returns at once."""

    def cancel(self, job_id: str, tasks: list[JobPaths]) -> str:
        """Stop ``job_id`` (a job, or an array's base ID whose ``tasks`` are given); what was done, in words."""

    def observe(self, jobs: list[tuple[JobPaths, dict[str, Any]]]) -> Observed:
        """The state of each of ``jobs`` (with its submission) now, asking the scheduler once."""

    def shown(self, paths: JobPaths, submission: dict[str, Any], record: dict[str, Any] | None) -> Shown:
        """The state to show for a job without asking the scheduler; ``record`` is sync's."""

    def end_state(self, paths: JobPaths, submission: dict[str, Any]) -> str | None:
        """How a followed search ended (its state's name), or None while it runs."""


def named(name: str) -> Backend:
    """The backend a submission names (one of ``orchestrator.core.index.SCHEDULERS``)."""
    from orchestrator.scheduler.local_backend import Debug, Local
    from orchestrator.scheduler.slurm_backend import Slurm

    backends: dict[str, type[Backend]] = {"slurm": Slurm, "local": Local, "debug": Debug}
    return backends[name]()


def of(submission: dict[str, Any]) -> Backend:
    """The backend of a recorded submission (one that could not be read: SLURM's, which shows sync's
    record alone)."""
    return named(submission.get("scheduler") or "slurm")


def for_submit(local: bool, debug_trials: int | None = None) -> Backend:
    """Where ``orch submit`` sends a new job: SLURM when ``sbatch`` is here, unless ``local`` asks for
    this machine; with ``debug_trials`` (``--debug``), this process, running at most that many trials
    (0: all)."""
    if debug_trials is not None:
        from orchestrator.scheduler.local_backend import Debug

        return Debug(debug_trials)
    return named("local" if local or not slurm.available() else "slurm")


def wait(paths: JobPaths, timeout_s: float | None = None) -> str:
    """Wait until the job (or search) of ``paths`` ended, as its backend tells (``end_state``), looking
    as often as the backend says (every 10 s on SLURM); its end state. ``TimeoutError`` after
    ``timeout_s``."""
    submission = read_submission(paths) or {}
    backend = of(submission)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while (state := backend.end_state(paths, submission)) is None:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{paths.job_id} did not end within {timeout_s:g} s")
        time.sleep(backend.poll_s or 10.0)
    return state


def shown_state(paths: JobPaths, submission: dict[str, Any], record: dict[str, Any] | None) -> Shown:
    """The state every reader shows for a job without asking the scheduler (``Backend.shown``)."""
    return of(submission).shown(paths, submission, record)
