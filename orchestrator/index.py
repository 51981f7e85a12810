"""The derived index: one summary row per job, so listing 10,000 jobs reads one file.

Written only by ``orch sync`` (atomically, every tick); a cache that ``orch sync``
rebuilds from the job directories when it is missing or unreadable. Rows of jobs
that are settled (terminal, recovery decided) never change again.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.attempts import children, search_records
from orchestrator.registry import JobPaths, read_json, write_json_atomic

INDEX = "index.json"


def index_path(root: Path) -> Path:
    return root / INDEX


def load(root: Path) -> dict[str, dict[str, Any]]:
    """job_id → row; empty when there is no usable index."""
    try:
        return read_json(index_path(root))["jobs"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return {}


def written_at(root: Path) -> str | None:
    """When ``orch sync`` last finished a tick on this registry (it rewrites the index every tick),
    from the file's time so that nothing large is read."""
    try:
        moment = index_path(root).stat().st_mtime
    except FileNotFoundError:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")


def save(root: Path, rows: dict[str, dict[str, Any]], written_at: str) -> None:
    write_json_atomic(index_path(root), {"written_at": written_at, "jobs": rows})


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.endswith(b"\n"))
    except FileNotFoundError:
        return 0


def measured_peak_gb(paths: JobPaths, scheduler: dict[str, Any]) -> float | None:
    """The job's peak memory: the larger of the scheduler's MaxRSS (sampled, so it can miss a short
    peak) and the peaks the job measured itself (``run.json``: its own and its largest trial's)."""
    run = read_json(paths.run) if paths.run.exists() else {}
    candidates = [scheduler.get("max_rss_bytes") and scheduler["max_rss_bytes"] / 1024**3,
                  *(run.get(k) and run[k] / 1024 for k in ("self_peak_rss_mb", "children_peak_rss_mb"))]
    known = [c for c in candidates if c]
    return round(max(known), 3) if known else None


def row(paths: JobPaths, submission: dict[str, Any], scheduler: dict[str, Any] | None) -> dict[str, Any]:
    """The summary of one job from its files."""
    config = submission.get("config", {})
    scheduler = scheduler or {}
    search = bool(submission.get("worker_ids"))
    return {
        "job_id": paths.job_id, "label": config.get("label"), "name": config.get("name"),
        "version": config.get("version"), "plane": submission.get("plane"),
        "scheduler": submission.get("scheduler"), "submitted_at": submission.get("submitted_at"),
        "attempt": submission.get("attempt", 1), "parent_job_id": submission.get("parent_job_id"),
        "children": children(paths), "mem_gb": submission.get("request", {}).get("mem_gb"),
        "estimated_peak_gb": submission.get("estimate", {}).get("peak_gb"),
        "state": scheduler.get("state", "PENDING"), "reason": scheduler.get("reason", ""),
        "max_rss_bytes": scheduler.get("max_rss_bytes"), "measured_peak_gb": measured_peak_gb(paths, scheduler),
        "settled": "recovery" in scheduler,
        "trials_done": len(search_records(paths)) if search else count_lines(paths.trials),
        "search_id": submission.get("search_id"),  # set on the workers of a search and their attempts
        "workers": ({"total": len(submission["worker_ids"]), "running": (scheduler.get("workers") or {}).get("running", 0)}
                    if search else None),
    }
