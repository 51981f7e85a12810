"""The job environment: which job this process is, the cores it may use, whether SLURM runs it, and
whether a process named in the registry is still the one that was recorded.

The only module that reads the scheduler's job variables (SLURM's ``SLURM_*``, the local executor's
``ORCH_JOB_ID``): the batch script, the job, its trials and the local executor all ask here.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from orchestrator.core.errors import OrchError
from orchestrator.core.registry import is_job_id

LOCAL_JOB_ID = "ORCH_JOB_ID"  # the local executor's name for the job a task runs
TRIAL_THREADS = "ORCH_THREADS"  # the cores a job gives each of its trial processes
SUBMITTED_CONFIGS = "ORCH_CONFIG_SHA256"  # a job's processes: the hashes its batch script names


def job_id(env: Mapping[str, str] = os.environ) -> str:
    """This job's registry ID: the local executor's ``ORCH_JOB_ID``, else SLURM's array task
    (``<array job>_<task>``), else SLURM's job ID."""
    if env.get(LOCAL_JOB_ID):
        found = env[LOCAL_JOB_ID]
    elif env.get("SLURM_ARRAY_TASK_ID"):
        found = f"{env.get('SLURM_ARRAY_JOB_ID')}_{env['SLURM_ARRAY_TASK_ID']}"
    else:
        found = env.get("SLURM_JOB_ID", "")
    if not is_job_id(found):
        raise OrchError(f"no job ID in the environment ({LOCAL_JOB_ID}, SLURM_ARRAY_JOB_ID/SLURM_ARRAY_TASK_ID or "
                        f"SLURM_JOB_ID); got {found!r}: a job runs under SLURM or the local executor")
    return found


def cpus(env: Mapping[str, str] = os.environ) -> int:
    """Cores this job may use: SLURM's allocation, else this process's CPU affinity."""
    return int(env.get("SLURM_CPUS_PER_TASK") or 0) or len(os.sched_getaffinity(0))


def trial_threads(env: Mapping[str, str] = os.environ) -> int:
    """Cores for TensorFlow in a trial process: what its job gave it, else this process's affinity."""
    return int(env.get(TRIAL_THREADS) or 0) or len(os.sched_getaffinity(0))


def submitted_configs(env: Mapping[str, str] = os.environ) -> list[str] | None:
    """The hashes of the configs this job was submitted with (None when its batch script named none)."""
    value = env.get(SUBMITTED_CONFIGS)
    return value.split(",") if value else None


def under_slurm(env: Mapping[str, str] = os.environ) -> bool:
    """Whether SLURM runs this process (it then ends the job itself at its time limit)."""
    return "SLURM_JOB_ID" in env


def local_task_env(job: str, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment of a local executor's task: ``env`` without SLURM's job variables (a job started
    from inside an allocation is not that allocation), plus ``ORCH_JOB_ID``."""
    return {**{k: v for k, v in env.items() if not k.startswith("SLURM_")}, LOCAL_JOB_ID: job}


def sbatch_env(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment ``sbatch`` exports to a job: ``env`` without the local executor's job ID."""
    return {k: v for k, v in env.items() if k != LOCAL_JOB_ID}


def die_with_parent() -> None:
    """In a child process, before it runs anything: be killed when the process that started it dies
    (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so that no job or trial outlives what runs it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), or None when there is no such process
    here. With the pid it names one process for good: pids are reused, start times not."""
    fields = _stat(pid) if pid > 0 else None
    return int(fields[19]) if fields and len(fields) > 19 else None


def still_runs(pid: int, started: int | None) -> bool:
    """Whether the process recorded as (``pid``, ``started``) runs here (on this host); a zombie does not."""
    fields = _stat(pid) if pid > 0 else None
    return bool(fields) and started is not None and len(fields) > 19 and int(fields[19]) == started \
        and fields[0] not in ("Z", "X")
