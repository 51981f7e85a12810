"""What each source says about a job's state now: sacct's job and step lines, squeue or scontrol,
the job's own records, and (for a search of several workers) its workers' states. Pure readings,
shared by the backends (``orchestrator.scheduler.backend``); ``orchestrator.track.sync`` decides
what to do with them."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.core import slurm
from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths
from orchestrator.core.state import JobState, Observation, RunStatus, from_slurm


def sacct_observations(rows: list[slurm.SacctRow]) -> dict[str, Observation]:
    """One observation per job from its job line and step lines: the failure cause and MaxRSS live on
    steps (a memory kill under srun shows on step .0 while the allocation says FAILED)."""
    jobs: dict[str, Observation] = {}
    steps: dict[str, list[slurm.SacctRow]] = {}
    for r in rows:
        if r.step is None:
            jobs[r.job_id] = Observation(from_slurm(r.state), r.reason if r.reason != "None" else "", "sacct",
                                         r.exit_code, r.signal, None, r.elapsed_s, r.cpu_s,
                                         r.start if r.start not in ("Unknown", "None") else None,
                                         r.end if r.end not in ("Unknown", "None") else None)
        else:
            steps.setdefault(r.job_id, []).append(r)
    for job_id, obs in jobs.items():
        job_steps = steps.get(job_id, [])
        rss = [s.max_rss_bytes for s in job_steps if s.max_rss_bytes is not None]
        obs.max_rss_bytes = max(rss) if rss else None
        if obs.state is JobState.FAILED and any(s.state == "OUT_OF_MEMORY" for s in job_steps):
            oom = next(s for s in job_steps if s.state == "OUT_OF_MEMORY")
            obs.state, obs.reason = JobState.OUT_OF_MEMORY, f"step {oom.step} ran out of memory"
    return jobs


def queue_observations(rows: list[slurm.QueueRow], source: str) -> dict[str, Observation]:
    return {r.job_id: Observation(from_slurm(r.state), r.reason if r.reason != "None" else "", source,
                                  r.exit_code, r.signal) for r in rows}


def search_observation(states: list[str | None], has_result: bool) -> Observation:
    """A search's state from its workers' (newest attempts') states: RUNNING while any runs, PENDING
    while any waits; once all ended, COMPLETED if the final step wrote the result, else the state of
    the first worker that did not complete."""
    known = [JobState(s) if s else JobState.PENDING for s in states]
    running = sum(1 for s in known if s is JobState.RUNNING)
    workers = {"running": running, "total": len(known)}
    reason = f"{running} of {len(known)} workers running"
    if running:
        return Observation(JobState.RUNNING, reason, "workers", workers=workers)
    if not all(s.terminal for s in known):
        waiting = JobState.PENDING if JobState.PENDING in known else JobState.UNKNOWN
        return Observation(waiting, reason, "workers", workers=workers)
    if has_result:
        return Observation(JobState.COMPLETED, "", "workers", workers=workers)
    failed = next(s for s in known if s is not JobState.COMPLETED) if set(known) != {JobState.COMPLETED} \
        else JobState.FAILED
    return Observation(failed, "no worker wrote the search's result", "workers", workers=workers)


def own_records(paths: JobPaths) -> Observation | None:
    """What the job's own files say, when they are conclusive (completed or failed)."""
    run = read_optional_record(paths.run)
    if run is None:
        return None
    if run.get("status") == RunStatus.COMPLETED:  # a worker of several: the result may be another worker's
        return Observation(JobState.COMPLETED, "", "registry")
    if run.get("status") == RunStatus.FAILED:
        return Observation(JobState.FAILED, run.get("reason", ""), "registry")
    if run.get("status") == RunStatus.OUT_OF_MEMORY:
        return Observation(JobState.OUT_OF_MEMORY, run.get("reason", ""), "registry")
    return None


def with_own_end(paths: JobPaths, observation: Observation) -> Observation:
    """A job that ended its attempt itself as out of memory (a trial thrashed against the limit, and
    the kernel never killed it) is OUT_OF_MEMORY, whatever its exit code made the scheduler say, so
    that recovery raises its memory; other observations stand."""
    own = own_records(paths) if observation.state is JobState.FAILED else None
    if own is None or own.state is not JobState.OUT_OF_MEMORY:
        return observation
    return replace(observation, state=own.state, reason=own.reason)
