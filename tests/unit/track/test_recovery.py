"""The recovery policy: what sync decides for an ended job (pure, no files)."""

from __future__ import annotations

import pytest

from orchestrator.core.state import JobState
from orchestrator.core.units import GIB
from orchestrator.track.recovery import Policy, decide

POLICY = Policy(max_attempts=3, memory_factor=1.5, max_mem_gb=64)


@pytest.mark.parametrize("state, attempt, rss_gb, resubmit, mem, words", [
    (JobState.OUT_OF_MEMORY, 1, 7.9, True, 12.0, "retrying with 12 GB"),   # max(8, 7.9) × 1.5
    (JobState.OUT_OF_MEMORY, 1, 35.7, True, 54.0, "retrying with 54 GB"),  # polled kill: MaxRSS above the limit
    (JobState.OUT_OF_MEMORY, 1, None, True, 12.0, "retrying with 12 GB"),
    (JobState.OUT_OF_MEMORY, 3, 7.9, False, None, "all 3 attempts are used"),
    (JobState.TIMEOUT, 1, 2.0, True, 8.0, "TIMEOUT: resuming"),
    (JobState.TIMEOUT, 1, 7.7, True, 12.0,  # crawled at its limit: more memory, not the same
     "TIMEOUT at its memory limit (MaxRSS 7.70 of 8 GB): retrying with 12 GB"),
    (JobState.TIMEOUT, 1, 7.5, True, 8.0, "TIMEOUT: resuming"),  # under 95 % of it
    (JobState.PREEMPTED, 2, None, True, 8.0, "PREEMPTED: resuming"),
    (JobState.NODE_FAIL, 1, None, True, 8.0, "NODE_FAIL: resuming"),
    (JobState.FAILED, 1, None, False, None, "a program error is not retried"),
    (JobState.CANCELLED, 1, None, False, None, "cancelled: not retried"),
    (JobState.COMPLETED, 1, None, False, None, "completed"),
])
def test_recovery_decisions(state, attempt, rss_gb, resubmit, mem, words) -> None:
    decision = decide(state, attempt, 8.0, int(rss_gb * GIB) if rss_gb else None, POLICY)
    assert (decision.resubmit, decision.mem_gb) == (resubmit, mem)
    assert words in decision.reason


def test_memory_raise_is_capped_at_the_partition_limit() -> None:
    assert decide(JobState.OUT_OF_MEMORY, 1, 50.0, None, POLICY).mem_gb == 64
    capped = decide(JobState.OUT_OF_MEMORY, 1, 64.0, None, POLICY)
    assert not capped.resubmit and "partition limit of 64 GB" in capped.reason
