"""One state enum for jobs, with the terminal and retryable sets, and SLURM's names mapped onto it."""

from __future__ import annotations

from enum import Enum

EXIT_INTERRUPTED = 75  # a job stopped by a signal after saving its state (EX_TEMPFAIL): resumable
UNSYNCED = "UNSYNCED"  # the state shown for a SLURM job that ``orch sync`` has not seen yet (no JobState: no
                       # source said anything about it)


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
