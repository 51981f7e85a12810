"""The recovery policy: what ``orch sync`` does with a job that has ended.

OUT_OF_MEMORY → a new attempt with memory raised to max(request, MaxRSS) × memory_factor,
capped at the site's ``max_mem_gb``; so for a TIMEOUT whose MaxRSS reached ``AT_LIMIT`` of its
request (a job crawling against its memory limit, which the kernel never killed, runs to its time
limit: the same memory again would crawl again); TIMEOUT, PREEMPTED, NODE_FAIL → a new attempt with
the same resources, resuming the search; FAILED (a program error), CANCELLED (by a user) and
COMPLETED → nothing. No search gets more than ``max_attempts`` attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.core.state import RETRYABLE, JobState
from orchestrator.core.units import GIB

AT_LIMIT = 0.95  # a MaxRSS this close to the request: the job used all the memory it had


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    memory_factor: float
    max_mem_gb: float | None  # the partition's limit


@dataclass(frozen=True)
class Decision:
    resubmit: bool
    reason: str
    mem_gb: float | None = None  # for the new attempt


def decide(state: JobState, attempt: int, mem_gb: float, max_rss_bytes: int | None, policy: Policy) -> Decision:
    """The decision for a job that ended in ``state`` as attempt number ``attempt`` of its search."""
    if state is JobState.COMPLETED:
        return Decision(False, "completed")
    if state is JobState.CANCELLED:
        return Decision(False, "cancelled: not retried")
    if state not in RETRYABLE:
        return Decision(False, f"{state.value}: a program error is not retried; see the reason and the log")
    if attempt >= policy.max_attempts:
        return Decision(False, f"{state.value}, and all {policy.max_attempts} attempts are used")
    rss_gb = (max_rss_bytes or 0) / GIB
    if state is JobState.TIMEOUT and rss_gb >= AT_LIMIT * mem_gb:
        what = f"TIMEOUT at its memory limit (MaxRSS {rss_gb:.2f} of {mem_gb:g} GB)"
    elif state is not JobState.OUT_OF_MEMORY:
        return Decision(True, f"{state.value}: resuming the search", mem_gb)
    else:
        what = f"OUT_OF_MEMORY with {mem_gb:g} GB"
    used_gb = max(mem_gb, rss_gb)
    new_gb = float(math.ceil(used_gb * policy.memory_factor))
    if policy.max_mem_gb is not None and new_gb > policy.max_mem_gb:
        if mem_gb >= policy.max_mem_gb:
            return Decision(False, f"{what} at the partition limit of {policy.max_mem_gb:g} GB; "
                                   "reduce max_samples or the model")
        new_gb = policy.max_mem_gb
    return Decision(True, f"{what}: retrying with {new_gb:g} GB", new_gb)
