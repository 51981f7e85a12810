"""Every SLURM call orch makes: pure ``build_*``/``parse_*`` functions and thin ``run_*`` wrappers.

Wrappers use argv lists (never a shell), a timeout, and raise ``SchedulerError``
carrying the command's stderr. Submissions are never retried blindly: a
submission that timed out may still have been queued.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Sequence

from orchestrator.errors import SchedulerError
from orchestrator.registry import validate_job_id

TIMEOUT_S = 60
_SBATCH_ID = re.compile(r"^([0-9]+)(?:;[A-Za-z0-9_.-]+)?$")


def available() -> bool:
    """True when ``sbatch`` is on PATH (the SLURM client is installed here)."""
    return shutil.which("sbatch") is not None


def build_sbatch(hold: bool = True) -> list[str]:
    """argv of a submission whose script comes on stdin; held so the registry entry exists before it runs."""
    return ["sbatch", "--parsable", *(["--hold"] if hold else [])]


def parse_sbatch(stdout: str) -> str:
    """The job ID from ``sbatch --parsable`` output (``123`` or ``123;cluster``)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    match = _SBATCH_ID.match(lines[-1]) if lines else None
    if not match:
        raise SchedulerError(f"sbatch: unexpected output {stdout.strip()!r}; expected a job ID")
    return match[1]


def build_squeue_states(job_id: str) -> list[str]:
    """argv listing the states of a job (array tasks one per line), no header."""
    return ["squeue", "--noheader", "--jobs", validate_job_id(job_id), "--format=%T"]


def submission_env() -> dict[str, str]:
    """The environment sbatch exports to the job: ours, minus the local executor's job ID."""
    return {k: v for k, v in os.environ.items() if k != "ORCH_JOB_ID"}


def run(argv: Sequence[str], stdin: str | None = None, timeout_s: float = TIMEOUT_S,
        env: dict[str, str] | None = None) -> str:
    """Run one scheduler command; its stdout, or ``SchedulerError`` with its stderr."""
    try:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout_s,
                              env=env, check=False)
    except FileNotFoundError:
        raise SchedulerError(f"{argv[0]}: command not found; is the SLURM client installed here?") from None
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"{' '.join(argv)}: no answer within {timeout_s:g} s") from None
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}"
        raise SchedulerError(f"{argv[0]} failed: {message}")
    return proc.stdout


def run_sbatch_held(script: str) -> str:
    """Submit ``script`` held; return its job ID."""
    return parse_sbatch(run(build_sbatch(hold=True), stdin=script, env=submission_env()))


def run_release(job_id: str) -> None:
    run(["scontrol", "release", validate_job_id(job_id)])


def run_cancel(job_id: str) -> None:
    run(["scancel", validate_job_id(job_id)])


def run_squeue_states(job_id: str) -> list[str]:
    """The job's states in the queue; empty once it has left it."""
    return run(build_squeue_states(job_id)).split()
