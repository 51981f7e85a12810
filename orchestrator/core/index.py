"""The derived index: one summary row per job, so listing 10,000 jobs reads one file.

Written only by ``orch sync`` (atomically, every tick); a cache that ``orch sync``
rebuilds from the job directories when it is missing or unreadable. Rows of jobs
that are settled (terminal, recovery decided) never change again; the row of a settled
job that stands for its search (no attempt continues it, not a worker) also keeps the
search's summary (``search_summary``), so that a page of every search reads it from here.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from orchestrator.core.attempts import (
    SUMMARY_CHARS,
    best_record,
    children,
    descendants,
    is_search_entry,
    search_of,
    search_records,
    search_result,
    workers,
)
from orchestrator.core.clock import iso
from orchestrator.core.errors import OrchError
from orchestrator.core.files import make_dir, open_file, write_json_atomic
from orchestrator.core.records import (
    NONSENSE,
    read_optional_record,
    read_record,
    report_skipped,
)
from orchestrator.core.registry import JobPaths, is_job_id, jobs_dir
from orchestrator.core.state import UNSYNCED, Shown
from orchestrator.core.units import gib, mib_to_gib

SCHEDULERS = ("slurm", "local", "debug")  # what a submission's "scheduler" may say (orchestrator.scheduler.backend)
INDEX = Path("index") / "index.json"  # in a folder of its own: the root is sticky, and every member's sync rewrites it
UNREADABLE = "UNREADABLE"  # the state shown for a job whose files cannot be read


def index_path(root: Path) -> Path:
    return root / INDEX


def load(root: Path) -> dict[str, dict[str, Any]]:
    """job_id → row; empty when there is no index, or when it cannot be read (reported once; the next
    ``orch sync`` rebuilds it from the job directories)."""
    path = index_path(root)
    try:
        rows = read_record(path).get("jobs")
        if not isinstance(rows, dict) or not all(is_job_id(k) and isinstance(r, dict) for k, r in rows.items()):
            raise OrchError(f"{path}: expected {{\"jobs\": {{job ID: row}}}}")
        return rows
    except FileNotFoundError:
        return {}
    except OSError as exc:
        problem = f"{path}: {exc.strerror or exc}"
    except OrchError as exc:
        problem = str(exc)
    report_skipped(f"{problem}; the next orch sync rebuilds it from the job directories")
    return {}


def job_names(root: Path) -> list[str]:
    """The job directories under ``jobs/``, sorted; anything else there (a README, a ``100.bak`` copy,
    a symbolic link) is skipped and reported once. Hidden names are nobody's jobs and are passed over."""
    try:
        entries = [e for e in os.scandir(jobs_dir(root)) if not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    names = []
    for entry in entries:
        if not is_job_id(entry.name):
            report_skipped(f"{entry.path}: not a job directory (its name is not a job ID)")
        elif not entry.is_dir(follow_symlinks=False):
            report_skipped(f"{entry.path}: not a job directory")
        else:
            names.append(entry.name)
    return sorted(names)


def read_submission(paths: JobPaths) -> dict[str, Any] | None:
    """A job's submission record (None when it has none), checked for what its readers rely on; one
    they cannot use is an ``OrchError`` naming the file and the key."""
    try:
        submission = read_record(paths.submission)
    except FileNotFoundError:
        return None
    where = paths.submission
    if submission.get("scheduler") not in SCHEDULERS:
        raise OrchError(f"{where}: scheduler: expected one of {', '.join(SCHEDULERS)}")
    try:
        moment: datetime | None = datetime.fromisoformat(submission["submitted_at"])
    except (KeyError, TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise OrchError(f"{where}: submitted_at: expected an ISO time with a zone, such as 2026-11-21T12:00:00+00:00")
    request = submission.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("mem_gb"), (int, float)):
        raise OrchError(f"{where}: request: expected an object with mem_gb")
    attempt = submission.get("attempt", 1)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise OrchError(f"{where}: attempt: expected a whole number from 1")
    for key in ("array_job_id", "search_id", "parent_job_id"):
        if submission.get(key) is not None and not is_job_id(submission[key]):
            raise OrchError(f"{where}: {key}: expected a job ID or null")
    for key in ("config", "estimate"):
        if not isinstance(submission.get(key, {}), dict):
            raise OrchError(f"{where}: {key}: expected an object")
    return submission


def current_row(paths: JobPaths, shown: Callable[[JobPaths, dict[str, Any], dict[str, Any] | None], Shown]
                ) -> dict[str, Any] | None:
    """The summary of one job from its files as they are now, its state as ``shown`` says (the backend's
    ``shown_state``); None when it has no submission. A job whose files cannot be read is a row in
    state UNREADABLE, its reason saying why (reported once)."""
    try:
        submission = read_submission(paths)
        if submission is None:
            return None
        scheduler = read_record(paths.scheduler) if paths.scheduler.exists() else None
        return row(paths, submission, scheduler, shown(paths, submission, scheduler))
    except OSError as exc:
        problem = f"{exc.filename}: {exc.strerror}"
    except OrchError as exc:
        problem = str(exc)
    except NONSENSE as exc:  # a record edited into nonsense
        problem = f"{paths.dir}: unexpected content in its records ({type(exc).__name__}: {exc})"
    report_skipped(problem)
    return {**row(paths, {}, None, None), "state": UNREADABLE, "reason": problem}


def written_at(root: Path) -> str | None:
    """When ``orch sync`` last finished a tick on this registry (it rewrites the index every tick),
    from the file's time so that nothing large is read."""
    try:
        moment = index_path(root).stat().st_mtime
    except FileNotFoundError:
        return None
    return iso(datetime.fromtimestamp(moment, timezone.utc))


def save(root: Path, rows: dict[str, dict[str, Any]], written_at: str) -> None:
    make_dir(index_path(root).parent)
    write_json_atomic(index_path(root), {"written_at": written_at, "jobs": rows})


def count_lines(path: Path) -> int:
    """Complete lines of a JSON-lines file (0 when it is missing, or is no regular file: reported once)."""
    try:
        with os.fdopen(open_file(path, os.O_RDONLY, "a JSON-lines file"), "rb", buffering=2**20) as handle:
            return sum(1 for line in handle if line.endswith(b"\n"))
    except FileNotFoundError:
        return 0
    except OrchError as exc:
        report_skipped(str(exc))
        return 0


def measured_peak_gb(paths: JobPaths, scheduler: dict[str, Any]) -> float | None:
    """The job's peak memory: the larger of the scheduler's MaxRSS (sampled, so it can miss a short
    peak) and the peaks the job measured itself (``run.json``: its own and its largest trial's)."""
    run = read_optional_record(paths.run) or {}
    candidates = [scheduler.get("max_rss_bytes") and gib(scheduler["max_rss_bytes"]),
                  *(run.get(k) and mib_to_gib(run[k]) for k in ("self_peak_rss_mb", "children_peak_rss_mb"))]
    known = [c for c in candidates if c]
    return round(max(known), 3) if known else None


def total_trials(paths: JobPaths) -> int | None:
    """The trials the search of a job asks for: its frozen config's ``hp_max_evals`` (None without one)."""
    config = read_optional_record(paths.config)
    return (config or {}).get("model_parameters", {}).get("hp_max_evals")


def wall_s(search: JobPaths) -> float | None:
    """A search's wall time from its members' scheduler records: each worker's attempts one after the
    other, its workers at once (the longest of them); None while no member has an elapsed time."""
    chains = [[first, *(JobPaths(search.root, j) for j in descendants(first))]
              for first in (JobPaths(search.root, w) for w in workers(search))]
    walls = [sum((read_optional_record(p.scheduler) or {}).get("elapsed_s") or 0 for p in chain) for chain in chains]
    return max(walls, default=0) or None


def search_summary(paths: JobPaths) -> dict[str, Any]:
    """The search ``paths`` stands for, from the files of all its members: trials recorded (their lines
    skimmed, ``SUMMARY_CHARS``) and asked for, the best trial, the test F1 and AUC of its result, its
    wall time."""
    records = search_records(paths, SUMMARY_CHARS)
    best = best_record(records)
    search = search_of(paths)
    holder = search_result(search) if is_search_entry(search) else paths
    test = ((read_optional_record(holder.result) if holder else None) or {}).get("test") or {}
    return {"trials_done": len(records), "trials_total": total_trials(paths),
            "best": {k: best.get(k) for k in ("trial", "job_id", "objective_name", "objective")} if best else None,
            "test_f1": test.get("f1"), "test_auc": test.get("auc"), "wall_s": wall_s(search)}


def row(paths: JobPaths, submission: dict[str, Any], scheduler: dict[str, Any] | None,
        shown: Shown | None) -> dict[str, Any]:
    """The summary of one job from its files, in the state ``shown`` (None: not known); a settled job
    that stands for its search (no attempt continues it, not a worker) gets the search's summary too,
    read once: it no longer changes."""
    config = submission.get("config", {})
    scheduler = scheduler or {}
    search = bool(submission.get("worker_ids"))
    kids = children(paths)
    settled = "recovery" in scheduler
    return {
        "job_id": paths.job_id, "label": config.get("label"), "name": config.get("name"),
        "version": config.get("version"), "plane": submission.get("plane"),
        "scheduler": submission.get("scheduler"), "submitted_at": submission.get("submitted_at"),
        "attempt": submission.get("attempt", 1), "parent_job_id": submission.get("parent_job_id"),
        "children": kids, "mem_gb": submission.get("request", {}).get("mem_gb"),
        "estimated_peak_gb": submission.get("estimate", {}).get("peak_gb"),
        "estimate_model": submission.get("estimate", {}).get("model"),  # which memory model predicted it
        "state": shown.state if shown else UNSYNCED, "reason": shown.reason if shown else "",
        "max_rss_bytes": scheduler.get("max_rss_bytes"), "measured_peak_gb": measured_peak_gb(paths, scheduler),
        "settled": settled, "settled_at": (scheduler.get("recovery") or {}).get("decided_at"),
        "trials_done": len(search_records(paths, SUMMARY_CHARS)) if search else count_lines(paths.trials),
        "search_id": submission.get("search_id"),  # set on the workers of a search and their attempts
        "workers": ({"total": len(submission["worker_ids"]), "running": (scheduler.get("workers") or {}).get("running", 0)}
                    if search else None),
        "summary": search_summary(paths) if settled and not kids and not submission.get("search_id") else None,
    }
