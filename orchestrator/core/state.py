"""One state enum for jobs, with the terminal and retryable sets, and SLURM's names mapped onto it; what a
source says about a job (``Observation``) and the state shown for it (``Shown``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

EXIT_INTERRUPTED = 75  # a job stopped by a signal after saving its state (EX_TEMPFAIL): resumable
UNSYNCED = "UNSYNCED"  # the state shown for a SLURM job that ``orch sync`` has not seen yet (no JobState: no
                       # source said anything about it)


class RunStatus:
    """What a job's own record (``run.json``) says of its run, as the record spells it; the job writes it,
    status and sync read it."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by a signal after saving its state (exit code EXIT_INTERRUPTED)
    OUT_OF_MEMORY = "out_of_memory"  # a trial thrashed against the memory limit: the next attempt asks more


class JobState(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    PREEMPTED = "PREEMPTED"
    NODE_FAIL = "NODE_FAIL"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.OUT_OF_MEMORY, JobState.TIMEOUT,
                      JobState.CANCELLED, JobState.PREEMPTED, JobState.NODE_FAIL})
TERMINAL_NAMES = frozenset(s.value for s in TERMINAL)  # the same, as records spell them
RETRYABLE = frozenset({JobState.OUT_OF_MEMORY, JobState.TIMEOUT, JobState.PREEMPTED, JobState.NODE_FAIL})

_SLURM = {
    "PENDING": JobState.PENDING, "REQUEUED": JobState.PENDING, "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING, "CONFIGURING": JobState.PENDING, "RESV_DEL_HOLD": JobState.PENDING,
    "RUNNING": JobState.RUNNING, "COMPLETING": JobState.RUNNING, "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING, "SIGNALING": JobState.RUNNING, "STAGE_OUT": JobState.RUNNING,
    "RESIZING": JobState.RUNNING, "COMPLETED": JobState.COMPLETED, "FAILED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED, "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY, "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT, "CANCELLED": JobState.CANCELLED, "REVOKED": JobState.CANCELLED,
    "PREEMPTED": JobState.PREEMPTED, "NODE_FAIL": JobState.NODE_FAIL, "BOOT_FAIL": JobState.NODE_FAIL,
}


def from_slurm(name: str) -> JobState:
    """Our state for a SLURM state name (``CANCELLED by 0`` → CANCELLED); UNKNOWN for names we do not know."""
    return _SLURM.get(name.split(" ")[0].rstrip("+").upper(), JobState.UNKNOWN)


@dataclass
class Observation:
    """What a source says about one job now."""

    state: JobState
    reason: str = ""
    source: str = "sacct"
    exit_code: int | None = None
    signal: int | None = None
    max_rss_bytes: int | None = None
    elapsed_s: float | None = None
    cpu_s: float | None = None
    start: str | None = None
    end: str | None = None
    workers: dict[str, int] | None = None  # a search of several workers: how many run, of how many

    def record(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, JobState) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Shown:
    """The state shown for a job, its reason and where it comes from (``source``: sacct, squeue, the
    local executor's record, ...); ``live``: read now from the executor's record rather than from what
    ``orch sync`` last saw; ``own``: what the job's own records say when the scheduler's word is not
    in yet (a SLURM job that wrote its end before ``orch sync`` saw it)."""

    state: str
    reason: str
    source: str
    own: Observation | None = None
    live: bool = False
