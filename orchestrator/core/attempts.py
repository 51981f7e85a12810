"""The jobs of one search: its workers, and the attempts that continue a job after OOM, timeout or preemption.

An attempt names its parent in ``submission.json`` (``parent_job_id``); the parent
learns of it through a marker file ``children/<child_id>`` created when the child
is submitted. A job has at most one attempt continuing it: the command making it
(``orch resubmit``, or ``orch sync``'s recovery) first wins ``next_attempt.json``.
A search is keyed by its first job (one worker) or by its array's job ID
(``resources.workers`` > 1: the search entry lists its worker tasks). Its members are
every worker and every attempt continuing one. Trial records stay in the member that
ran them; the search's records are the union over its members, one per trial number.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator

from orchestrator.core.errors import InputError
from orchestrator.core.files import create_once, make_dir
from orchestrator.core.records import (
    numbered_json_lines,
    read_optional_record,
    read_record,
    report_skipped,
)
from orchestrator.core.registry import JobPaths, is_job_id, validate_job_id
from orchestrator.core.trials import OK, RESULTS, STATUSES


def parent_id(paths: JobPaths) -> str | None:
    """The job this one continues, or None."""
    if not paths.submission.exists():
        return None
    return read_record(paths.submission).get("parent_job_id")


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
    """The attempts submitted to continue this job (normally at most one); a file in ``children/`` that
    does not name a job is skipped and reported once."""
    try:
        names = sorted(os.listdir(paths.children))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if is_job_id(name):
            found.append(name)
        elif not name.startswith("."):  # a marker being created (files.temp_path) is not a stray file
            report_skipped(f"{paths.children / name}: not an attempt's marker (its name is not a job ID)")
    return found


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


def submitted_config(submission: dict[str, Any]) -> list[str] | None:
    """The hash of the config a job was submitted with, as ``load_config(submitted=...)`` takes it (None
    for a submission from before orch recorded it)."""
    digest = submission.get("config_sha256")
    return [digest] if isinstance(digest, str) else None


def reserve_next(parent: JobPaths, owner: dict[str, Any]) -> None:
    """Reserve the making of the one attempt that continues ``parent`` (``owner``: who, where, when),
    or raise ``InputError``: an attempt already made, or another command reserved it first (the
    reservation is an atomic create that only one command can win, whoever runs it)."""
    made = children(parent)
    if made:
        raise InputError(f"job {parent.job_id}", f"is already continued by {', '.join(made)}; a new attempt "
                                                 f"continues the newest: orch resubmit {newest(parent).job_id}")
    if not create_once(parent.next_attempt, owner):
        holder = read_optional_record(parent.next_attempt) or {}
        who = f"{holder.get('user', '?')}@{holder.get('host', '?')} (pid {holder.get('pid', '?')}) " \
              f"since {holder.get('reserved_at', '?')}"
        raise InputError(f"job {parent.job_id}", f"its next attempt is being made by {who}; if that command died "
                                                 f"without making one, remove {parent.next_attempt} and retry")


def release_next(parent: JobPaths) -> None:
    """Give up the reservation of ``parent``'s next attempt (its submission failed: nothing was made)."""
    parent.next_attempt.unlink(missing_ok=True)


def mark_child(parent: JobPaths, child_id: str) -> None:
    """Record in the parent that ``child_id`` continues it (created once, never rewritten)."""
    make_dir(parent.children)
    create_once(parent.children / validate_job_id(child_id), {"job_id": child_id})


def search_id(paths: JobPaths) -> str:
    """The ID of the search ``paths`` belongs to: its submission's ``search_id`` (a worker, or an
    attempt continuing one), else the first attempt of its chain."""
    if paths.submission.exists():
        declared = read_record(paths.submission).get("search_id")
        if declared:
            return validate_job_id(declared)
    return chain(paths)[0].job_id


def search_of(paths: JobPaths) -> JobPaths:
    """The search's entry: where its claims, shared data cache and list of workers live."""
    return JobPaths(paths.root, search_id(paths))


def workers(search: JobPaths) -> list[str]:
    """The worker tasks of a search (the search's own job when it has one worker)."""
    if not search.submission.exists():
        return [search.job_id]
    return [validate_job_id(w) for w in read_record(search.submission).get("worker_ids") or [search.job_id]]


def is_search_entry(paths: JobPaths) -> bool:
    """Whether ``paths`` is the entry of a search of several workers (not a job of its own)."""
    return paths.submission.exists() and bool(read_record(paths.submission).get("worker_ids"))


def members(search: JobPaths) -> list[JobPaths]:
    """Every job of the search: each worker, then the attempts continuing it."""
    found = []
    for worker in workers(search):
        first = JobPaths(search.root, worker)
        found += [first, *(JobPaths(search.root, j) for j in descendants(first))]
    return found


def counting(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per trial number, by trial number: the one of the newest claim generation (a trial
    run again after its claim was taken over); among equals (records older than claims have none),
    one that is not a trial lost to its resources, then the first one written."""
    seen: dict[int, dict[str, Any]] = {}
    for record in records:
        kept = seen.get(record["trial"])
        if kept is None or _rank(record) > _rank(kept):
            seen[record["trial"]] = record
    return [seen[n] for n in sorted(seen)]


def _rank(record: dict[str, Any]) -> tuple[int, bool]:
    return record.get("claim_generation", 0), record.get("failure") != "resource"


def members_with(paths: JobPaths) -> list[JobPaths]:
    """The members of the search of ``paths``, and ``paths`` with the attempts it continues in any case
    (an entry that its parent does not list, such as one made by hand, still sees its own records)."""
    found = members(search_of(paths))
    return found + [p for p in chain(paths) if p not in found]


SUMMARY_CHARS = 8192  # a summary reader skims longer trial lines: their larger nested values are left out


def search_records(paths: JobPaths, skim_over: int | None = None) -> list[dict[str, Any]]:
    """Trial records of the search ``paths`` belongs to (all its workers and attempts), one per trial;
    with ``skim_over`` (``SUMMARY_CHARS``: readers that need the summary fields only), without the
    large nested values of long lines."""
    return counting([r for member in members_with(paths) for r in trial_records(member.trials, skim_over)])


def trial_records(path: Path, skim_over: int | None = None) -> Iterator[dict[str, Any]]:
    """The trial records of one ``trials.jsonl``; a line that is not one is skipped and reported once."""
    for number, record in numbered_json_lines(path, skim_over):
        problem = _not_a_trial(record)
        if problem:
            report_skipped(f"{path} line {number}: not a trial record ({problem})")
        else:
            yield record


def _not_a_trial(record: dict[str, Any]) -> str | None:
    """What a record lacks to be a trial record (what the readers of records rely on), or None."""
    if not isinstance(record.get("trial"), int) or record["trial"] < 0:
        return "expected a trial number"
    if not isinstance(record.get("job_id"), str):
        return "expected a job_id"
    if record.get("status") not in STATUSES:
        return "expected a status of ok, pruned or failed"
    if record["status"] in RESULTS and not isinstance(record.get("loss"), (int, float)):
        return "expected a loss"
    return None


def search_result(search: JobPaths) -> JobPaths | None:
    """The member that wrote the search's ``result.json`` (there is one once the final step ran)."""
    return next((m for m in members(search) if m.result.exists()), None)


def best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ok trial with the lowest loss (first one on ties); a pruned one only when every trial with
    a result was pruned; None when no trial has a result."""
    scored = [r for r in records if r["status"] in RESULTS and math.isfinite(r["loss"])]
    ok = [r for r in scored if r["status"] == OK] or scored
    return min(ok, key=lambda r: (r["loss"], r["trial"])) if ok else None
