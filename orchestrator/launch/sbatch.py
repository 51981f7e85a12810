"""The batch script: resources from config + site profile + estimate, rendered to sbatch.

Nothing from a config reaches the script unquoted: names are validated
(``config.NAME_RE``), SLURM values are validated tokens, and every path is
``shlex.quote``d. The job finds its ID in its environment at run time, because the ID exists
only after ``sbatch``, and checks its ``config.json`` against the hashes the script names (the
script itself cannot be changed after submission: the scheduler, or the local executor, keeps its
own copy).
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.core.config import Config, config_hash
from orchestrator.core.errors import InputError
from orchestrator.core.registry import JobPaths, jobs_dir
from orchestrator.core.units import slurm_mem
from orchestrator.launch.site import SiteProfile


@dataclass(frozen=True)
class Request:
    """What one submission asks the scheduler for."""

    mem_gb: float
    timeout_min: int
    cpus_per_task: int
    gpus: int
    partition: str | None
    account: str | None
    qos: str | None
    constraint: str | None
    array: str | None  # e.g. "0-2%2": one task per plane, or per worker of one plane's search
    workers: int  # tasks of one search (an array submitted once per plane when > 1)
    signal_s: int  # the job is signalled (USR1) this long before its time limit, to save its state

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_request(config: Config, profile: SiteProfile, estimated_gb: float, workers: int | None = None,
                  mem_gb: float | None = None) -> Request:
    """Combine the config's resources, the site profile's defaults and the memory estimate; ``mem_gb``
    (``--mem``) overrides the memory asked for, within the site's limit as any other request. With
    several workers (``resources.workers``, or ``workers`` given) the request is one array of that
    many tasks (submitted once per plane), else an array over the planes when there are several."""
    res = config.resources
    workers = res.workers if workers is None else workers
    if mem_gb is not None:
        mem, key = mem_gb, "--mem"
    elif res.mem_gb is not None:
        mem, key = res.mem_gb, "resources.mem_gb"
    else:
        mem, key = estimated_gb, "the memory estimate"
    if profile.max_mem_gb is not None and mem > profile.max_mem_gb:
        raise InputError(str(config.path), f"{key} ({mem:g} GB) exceeds the partition limit of site "
                                           f"{profile.name!r} ({profile.max_mem_gb:g} GB)")
    tasks = workers if workers > 1 else len(config.planes)
    array = f"0-{tasks - 1}" + (f"%{res.max_parallel}" if res.max_parallel else "") if tasks > 1 else None
    timeout_min = res.timeout_min or profile.default_timeout_min
    return Request(
        mem_gb=mem, timeout_min=timeout_min,
        cpus_per_task=res.cpus_per_task or profile.default_cpus_per_task, gpus=res.gpus,
        partition=res.partition or profile.partition, account=res.account or profile.account,
        qos=res.qos or profile.qos, constraint=res.constraint or profile.constraint, array=array, workers=workers,
        signal_s=min(profile.signal_before_limit_s, timeout_min * 60 // 2),
    )


def format_time(minutes: int) -> str:
    """``--time`` value as ``D-HH:MM:SS`` (``HH:MM:SS`` under a day)."""
    days, rest = divmod(minutes, 1440)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def render(config: Config, request: Request, profile: SiteProfile, root: Path) -> str:
    """The exact batch script for one submission (one job, an array over planes, or the array of one
    plane's workers)."""
    jobs = jobs_dir(root)
    pattern = "%A_%a" if request.array else "%j"
    options = [
        f"--job-name={config.label}",
        f"--output={jobs}/{pattern}/{JobPaths.LOG_NAME}",
        "--open-mode=append",
        f"--mem={slurm_mem(request.mem_gb)}",
        f"--time={format_time(request.timeout_min)}",
        f"--cpus-per-task={request.cpus_per_task}",
        f"--signal=B:USR1@{request.signal_s}",
    ]
    for flag in ("partition", "account", "qos", "constraint"):
        value = getattr(request, flag)
        if value:
            options.append(f"--{flag}={value}")
    if request.gpus:
        options.append(f"--gres={profile.gpu_gres.replace('{n}', str(request.gpus))}")
    if request.array:
        options.append(f"--array={request.array}")
    _check_sbatch_path(config, jobs)
    lines = ["#!/bin/bash", *(f"#SBATCH {o}" for o in options),
             f"# orch: {config.label}, site profile {profile.name}",
             "set -euo pipefail", *profile.setup,
             "export PYTHONUNBUFFERED=1 PYTHONSAFEPATH=1",  # never import from the working directory
             f"exec {shlex.join([profile.python, '-m', *job_command(config, root)])}"]
    return "\n".join(lines) + "\n"


def job_command(config: Config, root: Path) -> list[str]:
    """The job's module and arguments (``python -m`` runs them): the job finds its own ID in its
    environment (``orchestrator.core.jobenv``), its directory in ``root``, and refuses a
    ``config.json`` that is none of the submitted ones."""
    return [f"jobs.{config.task}", "--registry", str(root), "--config-sha256", ",".join(submitted_hashes(config))]


def submitted_hashes(config: Config) -> list[str]:
    """The ``config_hash`` of each frozen config a submission of ``config`` writes (one per plane):
    the script names them, and the job refuses a ``config.json`` that is none of them."""
    return [config_hash(config.frozen(plane)) for plane in config.planes]


def _check_sbatch_path(config: Config, jobs: Path) -> None:
    """#SBATCH lines are not shell-quoted by sbatch: refuse a registry path they cannot carry."""
    text = str(jobs)
    if any(c.isspace() or c in "%\"'\\" for c in text):
        raise InputError(str(config.path), f"registry path {text!r} contains a space, quote, backslash or %; "
                                           "#SBATCH --output cannot carry it. Choose another --registry")
