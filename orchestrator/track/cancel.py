"""``orch cancel``: stop a job through its scheduler. ``orch sync`` then records CANCELLED, which is
never retried. A whole array is cancelled by its base ID, a search of several workers by its ID."""

from __future__ import annotations

from pathlib import Path

from orchestrator.core import attempts
from orchestrator.core.errors import InputError
from orchestrator.core.index import read_submission
from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths, validate_job_id
from orchestrator.core.state import TERMINAL_NAMES
from orchestrator.scheduler import backend
from orchestrator.track.status import array_tasks


def cancel(root: Path, job_id: str) -> str:
    """Send the cancel; return what was done, in words. A search of several workers is cancelled by
    stopping the newest attempt of every worker that has not ended."""
    validate_job_id(job_id)
    paths = JobPaths(root, job_id)
    if paths.dir.exists() and attempts.is_search_entry(paths):
        sent, refused = [], []
        for worker in attempts.workers(paths):
            target = attempts.newest(JobPaths(root, worker))
            try:
                sent.append(cancel(root, target.job_id))
            except InputError as exc:  # ended already, or not to be signalled from here
                refused.append(str(exc))
        if not sent:
            raise InputError(f"job {job_id}", "no worker of this search was cancelled: " + "; ".join(refused))
        return "\n".join(sent + [f"not cancelled: {why}" for why in refused])
    tasks = [job_id] if paths.dir.exists() else array_tasks(root, job_id)
    if not tasks:
        raise InputError(f"job {job_id}", f"not in the registry at {root}")
    paths = JobPaths(root, tasks[0])
    submission = read_submission(paths) or {}
    record = read_optional_record(paths.scheduler) or {}
    if len(tasks) == 1 and record.get("state") in TERMINAL_NAMES:
        raise InputError(f"job {job_id}", f"has already ended ({record['state']})")
    return backend.of(submission).cancel(job_id, [JobPaths(root, task) for task in tasks])
