"""``orch validate`` and ``orch submit``: from a config file to a recorded submission.

``plan`` does everything that can fail on bad input (config, data pre-flight,
memory estimate, site profile, script) before anything is queued or written.
``submit`` then queues the script held, records the registry entry of every
task, and releases the job; if recording fails the job is cancelled, so a
failed submit leaves neither a job nor an entry.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import shutil
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator import __version__, attempts, local, slurm
from orchestrator.config import Config, config_hash, load_config, repository_root
from orchestrator.errors import InputError, OrchError
from orchestrator import index
from orchestrator.memory import MemoryEstimate, calibrate, estimate
from orchestrator.registry import JobPaths, create_entry, new_local_job_id, read_json
from orchestrator.sbatch import Request, build_request, render
from orchestrator.scan import ScanReport, scan
from orchestrator.site import SiteProfile, load_profile
from orchestrator.state import JobState


@dataclass(frozen=True)
class Plan:
    """Everything a submission will do, decided and checked, nothing done yet."""

    config: Config
    reports: tuple[ScanReport, ...]  # one per plane
    estimate: MemoryEstimate  # of the largest plane: every array task gets the same --mem
    profile: SiteProfile
    request: Request
    script: str
    root: Path

    @property
    def memory_line(self) -> str:
        if self.config.resources.mem_gb is None:
            return self.estimate.describe()
        line = f"estimated peak {self.estimate.peak_gb:.1f} GB; requesting {self.request.mem_gb:g} GB (resources.mem_gb)"
        if self.estimate.peak_gb > self.request.mem_gb:
            line += "  WARNING: the estimate exceeds the request; expect OUT_OF_MEMORY"
        return line


def plan(config_path: str | Path, root: Path, mem_gb: float | None = None) -> Plan:
    """Validate ``config_path`` and its data, and prepare the submission to ``root``; ``mem_gb``
    overrides the memory request (a new attempt after OUT_OF_MEMORY, ``orch resubmit --mem``)."""
    config = load_config(config_path)
    reports = tuple(scan(config, plane) for plane in config.planes)
    largest = calibrate(max((estimate(config, r) for r in reports), key=lambda e: e.peak_gb),
                        measured_history(root, config.name))
    profile = load_profile(config.resources.site)
    request = build_request(config, profile, largest.request_gb)
    if mem_gb is not None:
        request = dataclasses.replace(request, mem_gb=mem_gb)
    script = render(config, request, profile, root)
    return Plan(config, reports, largest, profile, request, script, root)


def measured_history(root: Path, name: str) -> list[tuple[str, float, float]]:
    """(job ID, measured peak GB, predicted peak GB) of the completed jobs of config ``name``, newest
    first, from the index ``orch sync`` keeps."""
    rows = [r for r in index.load(root).values()
            if r.get("name") == name and r.get("state") == "COMPLETED" and r.get("measured_peak_gb")]
    rows.sort(key=lambda r: r["submitted_at"], reverse=True)
    return [(r["job_id"], r["measured_peak_gb"], r["estimated_peak_gb"]) for r in rows]


def submit(p: Plan, use_local: bool, parent: JobPaths | None = None) -> tuple[list[str],
                                                                           subprocess.Popen[bytes] | None]:
    """Queue the plan and record it; return the registry job IDs (one per task) and, for the
    local executor, the runner process. With ``parent``, the new job is an attempt continuing it."""
    tasks = list(enumerate(p.config.planes)) if p.request.array else [(None, p.config.planes[0])]
    lineage = _lineage(parent)
    if use_local:
        base = new_local_job_id()
        job_ids = _task_ids(base, tasks)
        _record(p, base, "local", tasks, [], lineage)
        _mark(parent, job_ids)
        return job_ids, local.launch(p.root, job_ids)
    base = slurm.run_sbatch_held(p.script)
    created: list[str] = []
    try:
        _record(p, base, "slurm", tasks, created, lineage)
        _mark(parent, created)
        slurm.run_release(base)
    except BaseException as exc:
        _undo(p.root, base, created, exc, parent)
        raise
    return _task_ids(base, tasks), None


def _task_ids(base: str, tasks: list[tuple[int | None, str]]) -> list[str]:
    return [base if task is None else f"{base}_{task}" for task, _ in tasks]


def resubmit(root: Path, job_id: str, mem_gb: float | None = None) -> tuple[list[str],
                                                                            subprocess.Popen[bytes] | None]:
    """A new attempt continuing ``job_id`` (same frozen config, same scheduler), resuming its search.
    The job must have ended in the registry (``orch sync`` records that), so two attempts never run
    the same search at once."""
    parent = JobPaths(root, job_id)
    if not parent.submission.exists():
        raise InputError(f"job {job_id}", f"no registry entry at {parent.dir}")
    state = read_json(parent.scheduler).get("state") if parent.scheduler.exists() else None
    if state is None or not JobState(state).terminal:
        raise InputError(f"job {job_id}", f"is {state or 'not yet synced'} in the registry; a new attempt needs it "
                                          f"ended: orch cancel {job_id}, then orch sync")
    scheduler = read_json(parent.submission)["scheduler"]
    p = plan(parent.config, root, mem_gb)
    return submit(p, use_local=scheduler == "local", parent=parent)


def _lineage(parent: JobPaths | None) -> dict[str, Any]:
    if parent is None:
        return {"parent_job_id": None, "attempt": 1}
    return {"parent_job_id": parent.job_id, "attempt": read_json(parent.submission).get("attempt", 1) + 1}


def _mark(parent: JobPaths | None, job_ids: list[str]) -> None:
    for job_id in job_ids if parent else []:
        attempts.mark_child(parent, job_id)


def _record(p: Plan, base: str, scheduler: str, tasks: list[tuple[int | None, str]], created: list[str],
            lineage: dict[str, Any]) -> None:
    """Create one registry entry per task; ``created`` collects the IDs of those made."""
    common = {**_provenance(p, scheduler), **lineage}
    for (task, plane), job_id in zip(tasks, _task_ids(base, tasks)):
        frozen = p.config.frozen(plane)
        report = p.reports[p.config.planes.index(plane)]
        submission = {
            **common, "job_id": job_id, "array_job_id": base if task is not None else None,
            "array_task_id": task, "plane": plane, "config_sha256": config_hash(frozen),
            "estimate": estimate(p.config, report).to_dict(),  # the model's prediction for this task
            "memory_plan": p.estimate.to_dict(),  # what --mem came from (largest task, calibrated)
            "data": {"files": report.files, "samples": report.samples, "bad_files": report.bad_files,
                     "positive_fraction": round(report.positive_fraction, 4)},
        }
        create_entry(p.root, job_id, {
            "config.json": json.dumps(frozen, indent=2) + "\n",
            "job.sbatch": p.script,
            "submission.json": json.dumps(submission, indent=2, sort_keys=True) + "\n",
        })
        created.append(job_id)


def _provenance(p: Plan, scheduler: str) -> dict[str, Any]:
    c = p.config
    return {
        "scheduler": scheduler, "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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


def _undo(root: Path, base: str, job_ids: list[str], cause: BaseException, parent: JobPaths | None) -> None:
    """Cancel a queued job whose recording or release failed, and remove the entries made for it."""
    try:
        slurm.run_cancel(base)
    except OrchError as exc:
        cause.add_note(f"and cancelling job {base} failed too: {exc}; cancel it by hand")
    for job_id in job_ids:
        shutil.rmtree(JobPaths(root, job_id).dir, ignore_errors=True)
    if parent is not None:
        for job_id in job_ids:
            (parent.children / job_id).unlink(missing_ok=True)

