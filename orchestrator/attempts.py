"""The attempts of one search: a job and the jobs that continue it after OOM, timeout or preemption.

An attempt names its parent in ``submission.json`` (``parent_job_id``); the parent
learns of it through a marker file ``children/<child_id>`` created when the child
is submitted. Trial records stay in the attempt that ran them; the search's records
are the union along the chain.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from orchestrator.registry import JobPaths, read_json, read_json_lines, validate_job_id


def parent_id(paths: JobPaths) -> str | None:
    """The job this one continues, or None."""
    if not paths.submission.exists():
        return None
    return read_json(paths.submission).get("parent_job_id")


def chain(paths: JobPaths) -> list[JobPaths]:
    """This attempt and its ancestors, oldest first."""
    found: list[JobPaths] = []
    current: JobPaths | None = paths
    while current is not None and current.job_id not in {p.job_id for p in found}:
        found.append(current)
        parent = parent_id(current)
        current = JobPaths(paths.root, parent) if parent else None
    return found[::-1]


def children(paths: JobPaths) -> list[str]:
    """The attempts submitted to continue this job (normally at most one)."""
    try:
        return sorted(validate_job_id(name) for name in os.listdir(paths.children))
    except FileNotFoundError:
        return []


def descendants(paths: JobPaths) -> list[str]:
    """The attempts continuing this job, oldest first (following the newest child at each step)."""
    found: list[str] = []
    current = paths
    while True:
        kids = [k for k in children(current) if k not in found and k != paths.job_id]
        if not kids:
            return found
        found.append(kids[-1])
        current = JobPaths(paths.root, kids[-1])


def newest(paths: JobPaths) -> JobPaths:
    """The latest attempt descending from this job (itself when none)."""
    later = descendants(paths)
    return JobPaths(paths.root, later[-1]) if later else paths


def mark_child(parent: JobPaths, child_id: str) -> None:
    """Record in the parent that ``child_id`` continues it (created once, never rewritten)."""
    parent.children.mkdir(exist_ok=True)
    Path(parent.children / validate_job_id(child_id)).touch()


def search_records(paths: JobPaths) -> list[dict[str, Any]]:
    """Trial records of the search up to this attempt, by trial number; a trial recorded twice keeps
    its first record. Trials an earlier attempt lost to its resources (``failure: "resource"``, e.g.
    killed for memory) are left out: they say nothing about their parameters, so this attempt runs
    them again."""
    seen: dict[int, dict[str, Any]] = {}
    for attempt in chain(paths):
        for record in read_json_lines(attempt.trials):
            if record.get("failure") == "resource" and record["job_id"] != paths.job_id:
                continue
            seen.setdefault(record["trial"], record)
    return [seen[n] for n in sorted(seen)]


def best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ok trial with the lowest hyperopt loss (first one on ties); None when no trial is ok."""
    ok = [r for r in records if r["status"] == "ok" and math.isfinite(r["loss"])]
    return min(ok, key=lambda r: (r["loss"], r["trial"])) if ok else None
