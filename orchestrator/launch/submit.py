"""``orch submit`` and ``orch resubmit``: from a plan (``orchestrator.launch.plan``) to a recorded
submission.

``submit`` queues the script held, records the registry entry of every task, and releases the job;
if recording fails the job is withdrawn, so a failed submit leaves neither a job nor an entry.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.core import attempts, index
from orchestrator.core.clock import now
from orchestrator.core.config import (
    config_hash,
    repository_root,
)
from orchestrator.core.errors import InputError, OrchError
from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.core.state import TERMINAL_NAMES
from orchestrator.launch.memory import estimate
from orchestrator.launch.plan import Plan, plan
from orchestrator.launch.sbatch import job_command
from orchestrator.scheduler.backend import Backend, Batch, of, shown_state

Task = tuple[int | None, str]  # (array task index or None, plane)


@dataclass(frozen=True)
class Unit:
    """One scheduler submission of a plan: a job, an array over planes, or one plane's array of workers
    (``search``: the array's ID is then the search's registry entry)."""

    tasks: tuple[Task, ...]
    search: bool


def units(p: Plan) -> list[Unit]:
    """The submissions a plan makes: one per plane's search when it has several workers, else one."""
    if p.request.workers > 1:
        return [Unit(tuple((w, plane) for w in range(p.request.workers)), True) for plane in p.config.planes]
    if p.request.array:
        return [Unit(tuple(enumerate(p.config.planes)), False)]
    return [Unit(((None, p.config.planes[0]),), False)]


def submit(p: Plan, backend: Backend, parent: JobPaths | None = None) -> list[str]:
    """Queue the plan held, record it, release it; return the registry IDs of what was made (a job per
    task; with several workers, a search per plane). With ``parent``, the new job is an attempt
    continuing it, in its search. If recording or releasing fails, what was queued is withdrawn and the
    entries made for it are removed."""
    lineage = _lineage(parent)
    batch = Batch(p.root, p.script, tuple(job_command(p.config, p.root)), p.request.timeout_min, p.request.signal_s,
                  p.request.gpus)
    made: list[tuple[Unit, str]] = []
    created: list[str] = []
    try:
        for unit in units(p):
            base = backend.submit_held(batch)
            made.append((unit, base))
            _record(p, base, backend.name, unit, created, lineage)
        _mark(parent, created)
        for unit, base in made:
            ids = _task_ids(base, unit.tasks)
            backend.release(batch, base, [ids] if unit.search else [[job_id] for job_id in ids])
    except BaseException as exc:
        _undo(p.root, backend, [base for _, base in made], created, exc, parent)
        raise
    return [job_id for unit, base in made for job_id in ([base] if unit.search else _task_ids(base, unit.tasks))]


def _task_ids(base: str, tasks: tuple[Task, ...]) -> list[str]:
    return [base if task is None else f"{base}_{task}" for task, _ in tasks]


def resubmit(root: Path, job_id: str, mem_gb: float | None = None) -> list[str]:
    """A new attempt continuing ``job_id`` (same frozen config, same scheduler), resuming its search.
    The job must have ended in the registry (``orch sync`` records that) and have no attempt yet, and
    one command at a time may make it (``attempts.reserve_next``), so two attempts never run the same
    search at once."""
    parent = JobPaths(root, job_id)
    submission = index.read_submission(parent)
    if submission is None:
        raise InputError(f"job {job_id}", f"no registry entry at {parent.dir}")
    if submission.get("worker_ids"):
        raise InputError(f"job {job_id}", f"is a search of {len(submission['worker_ids'])} workers; a new attempt "
                                          f"continues one worker: orch resubmit {submission['worker_ids'][0]}")
    state = shown_state(parent, submission, read_optional_record(parent.scheduler)).state
    if state not in TERMINAL_NAMES:
        raise InputError(f"job {job_id}", f"is {state} in the registry; a new attempt needs it ended: "
                                          f"orch cancel {job_id}, then orch sync")
    attempts.reserve_next(parent, {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                                   "reserved_at": now()})
    try:
        p = plan(parent.config, root, mem_gb, workers=1, submitted=attempts.submitted_config(submission))
        return submit(p, of(submission), parent=parent)
    except BaseException:
        attempts.release_next(parent)
        raise


def _lineage(parent: JobPaths | None) -> dict[str, Any]:
    if parent is None:
        return {"parent_job_id": None, "attempt": 1}
    before = index.read_submission(parent) or {}
    lineage = {"parent_job_id": parent.job_id, "attempt": before.get("attempt", 1) + 1}
    if before.get("search_id"):  # a worker of a search of several: the new attempt joins that search
        lineage.update(search_id=before["search_id"], worker=before.get("worker"))
    return lineage


def _mark(parent: JobPaths | None, job_ids: list[str]) -> None:
    for job_id in job_ids if parent else []:
        attempts.mark_child(parent, job_id)


def _record(p: Plan, base: str, scheduler: str, unit: Unit, created: list[str], lineage: dict[str, Any]) -> None:
    """Create the registry entries of one submission (the search's first, then one per task);
    ``created`` collects the IDs of those made."""
    common = {**_provenance(p, scheduler), **lineage}
    task_ids = _task_ids(base, unit.tasks)
    if unit.search:
        plane = unit.tasks[0][1]
        _entry(p, base, plane, {**common, "job_id": base, "array_job_id": None, "array_task_id": None,
                                "worker_ids": task_ids}, created)
    for (task, plane), job_id in zip(unit.tasks, task_ids):
        _entry(p, job_id, plane, {**common, "job_id": job_id, "array_job_id": base if task is not None else None,
                                  "array_task_id": task, **({"search_id": base, "worker": task} if unit.search
                                                            else {})}, created)


def _entry(p: Plan, job_id: str, plane: str, submission: dict[str, Any], created: list[str]) -> None:
    """One registry entry: the frozen config, the script, the submission record."""
    frozen = p.config.frozen(plane)
    report = p.reports[p.config.planes.index(plane)]
    submission.update({
        "plane": plane, "config_sha256": config_hash(frozen),
        "estimate": estimate(p.config, report).to_dict(),  # the model's prediction for this task
        "memory_plan": p.estimate.to_dict(),  # what --mem came from (largest task, calibrated)
        "data": {"files": report.files, "samples": report.samples, "bad_files": report.bad_files,
                 "positive_fraction": round(report.positive_fraction, 4)},
    })
    paths = JobPaths(p.root, job_id)
    create_entry(p.root, job_id, {
        paths.config.name: json.dumps(frozen, indent=2) + "\n",
        paths.script.name: p.script,
        paths.submission.name: json.dumps(submission, indent=2, sort_keys=True) + "\n",
    })
    created.append(job_id)


def _provenance(p: Plan, scheduler: str) -> dict[str, Any]:
    c = p.config
    return {
        "scheduler": scheduler, "submitted_at": now(),
        "user": getpass.getuser(), "host": socket.gethostname(), "orch_version": __version__,
        "config": {"name": c.name, "version": c.version, "label": c.label, "path": str(c.path),
                   "parent": c.frozen().get("parent"), "task": c.task},
        "git": git_state(c.path), "site_profile": p.profile.name, "request": p.request.to_dict(),
    }


def git_state(path: Path) -> dict[str, Any] | None:
    """Commit of the config's repository and whether the config file differs from it, or None."""
    root = repository_root(path)
    if root is None:
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", str(path)],
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "config_modified": bool(dirty.stdout.strip())}


def _undo(root: Path, backend: Backend, bases: list[str], job_ids: list[str], cause: BaseException,
          parent: JobPaths | None) -> None:
    """Withdraw the held submissions whose recording or release failed, and remove the entries made
    for them."""
    for base in bases:
        try:
            backend.withdraw(base)
        except OrchError as exc:
            cause.add_note(f"and cancelling job {base} failed too: {exc}; cancel it by hand")
    for job_id in job_ids:
        shutil.rmtree(JobPaths(root, job_id).dir, ignore_errors=True)
    if parent is not None:
        for job_id in job_ids:
            (parent.children / job_id).unlink(missing_ok=True)
