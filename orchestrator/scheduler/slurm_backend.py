"""The SLURM backend: ``sbatch --parsable --hold``, ``scontrol release``, ``scancel``, and one batched
``sacct`` per look at its jobs, with ``squeue`` for the ones sacct does not show yet and ``scontrol
show job`` when accounting fails. A job missing from every source is not yet visible, never failed.
What it shows without asking SLURM is ``orch sync``'s record, ``UNSYNCED`` before sync saw the job."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from orchestrator.core import attempts, slurm
from orchestrator.core.errors import SchedulerError
from orchestrator.core.registry import JobPaths
from orchestrator.core.state import TERMINAL_NAMES, UNSYNCED, Shown
from orchestrator.scheduler.backend import Batch, Observed
from orchestrator.scheduler.observe import (
    own_records,
    queue_observations,
    sacct_observations,
)

ENDED = "ENDED"  # a job that left the queue without its own records saying how (timeout, kill, cancel)


class Slurm:
    """A SLURM cluster, through its commands (``orchestrator.core.slurm``)."""

    name = "slurm"
    title = "SLURM"
    poll_s = None
    recovers = True

    def submit_held(self, batch: Batch) -> str:
        return slurm.run_sbatch_held(batch.script)

    def release(self, batch: Batch, base: str, groups: list[list[str]]) -> None:
        slurm.run_release(base)

    def withdraw(self, base: str) -> None:
        slurm.run_cancel(base)

    def run_here(self) -> None:
        pass  # SLURM runs its jobs

    def cancel(self, job_id: str, tasks: list[JobPaths]) -> str:
        slurm.run_cancel(job_id)
        return f"cancel sent to SLURM for {job_id}; orch sync records it"

    def observe(self, jobs: list[tuple[JobPaths, dict[str, Any]]]) -> Observed:
        seen = Observed()
        if not jobs:
            return seen
        bases = sorted({(s.get("array_job_id") or p.job_id) for p, s in jobs})
        try:
            seen.calls += 1
            seen.jobs = sacct_observations(slurm.run_sacct(bases, sacct_start([s for _, s in jobs])))
        except SchedulerError as exc:
            seen.problems.append(f"sacct failed ({exc}); using scontrol show job and the jobs' own records "
                                 "instead; no job is marked failed for want of data")
            try:
                seen.calls += 1
                seen.jobs = queue_observations(slurm.run_scontrol_show(), "scontrol")
            except SchedulerError as again:
                seen.problems.append(f"scontrol show job failed too ({again}); states left as they were")
            return seen
        missing = [p.job_id for p, _ in jobs if p.job_id not in seen.jobs]
        if missing:
            try:
                seen.calls += 1
                queued = queue_observations(slurm.run_squeue(), "squeue")
                seen.jobs.update({j: queued[j] for j in missing if j in queued})
            except SchedulerError as exc:
                seen.problems.append(f"squeue failed ({exc})")
        return seen

    def shown(self, paths: JobPaths, submission: dict[str, Any], record: dict[str, Any] | None) -> Shown:
        if record:
            state = record["state"]
            own = None if state in TERMINAL_NAMES else own_records(paths)
            return Shown(state, record.get("reason") or "", record.get("source") or "an unknown source", own)
        return Shown(UNSYNCED, "orch sync has not seen this job yet", "none", own_records(paths))

    def end_state(self, paths: JobPaths, submission: dict[str, Any]) -> str | None:
        """Once the job left the queue: what its own records say (``ENDED`` when they say nothing; sync
        records the scheduler's word)."""
        if slurm.run_squeue_states(paths.job_id):
            return None
        if submission.get("worker_ids"):
            return "COMPLETED" if attempts.search_result(paths) else ENDED
        own = own_records(paths)
        return own.state.value if own else ENDED


def sacct_start(submissions: list[dict[str, Any]]) -> str:
    """``--starttime`` for sacct: an hour before the earliest submission, in the cluster's local time."""
    earliest = min(datetime.fromisoformat(s["submitted_at"]) for s in submissions) - timedelta(hours=1)
    return earliest.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
