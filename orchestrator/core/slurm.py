"""Every SLURM call orch makes: pure ``build_*``/``parse_*`` functions and thin ``run_*`` wrappers.
In ``core`` because both sides call SLURM: the login side submits and observes through its backend
(``orchestrator.scheduler.slurm_backend``), and a job asks whether another worker's job still runs.

Wrappers use argv lists (never a shell), a timeout, and raise ``SchedulerError``
carrying the command's stderr. Submissions are never retried blindly: a
submission that timed out may still have been queued.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterable, Sequence

from orchestrator.core import jobenv
from orchestrator.core.errors import SchedulerError
from orchestrator.core.registry import validate_job_id
from orchestrator.core.units import SLURM_SUFFIXES

TIMEOUT_S = 60
_SBATCH_ID = re.compile(r"([0-9]+)(?:;[A-Za-z0-9_.-]+)?")


def available() -> bool:
    """True when ``sbatch`` is on PATH (the SLURM client is installed here)."""
    return shutil.which("sbatch") is not None


def build_sbatch(hold: bool = True) -> list[str]:
    """argv of a submission whose script comes on stdin; held so the registry entry exists before it runs."""
    return ["sbatch", "--parsable", *(["--hold"] if hold else [])]


def parse_sbatch(stdout: str) -> str:
    """The job ID from ``sbatch --parsable`` output (``123`` or ``123;cluster``)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    match = _SBATCH_ID.fullmatch(lines[-1]) if lines else None
    if not match:
        raise SchedulerError(f"sbatch: unexpected output {stdout.strip()!r}; expected a job ID")
    return match[1]


def build_squeue_states(job_id: str) -> list[str]:
    """argv listing the states of a job (array tasks one per line), no header."""
    return ["squeue", "--noheader", "--jobs", validate_job_id(job_id), "--format=%T"]


SACCT_FIELDS = ("JobID", "State", "ExitCode", "MaxRSS", "ReqMem", "Elapsed", "Start", "End", "Reason", "TotalCPU")


@dataclass(frozen=True)
class SacctRow:
    """One line of sacct: a job (``step`` None) or one of its steps (``batch``, ``extern``, ``0``...)."""

    job_id: str  # "17832069" or "17832069_2"
    step: str | None
    state: str  # first word: "CANCELLED by 0" → "CANCELLED"
    state_detail: str  # the rest: "by 0"
    exit_code: int
    signal: int
    max_rss_bytes: int | None
    req_mem: str
    elapsed_s: float
    start: str
    end: str
    reason: str
    cpu_s: float


@dataclass(frozen=True)
class QueueRow:
    """One job (or array task) as squeue or ``scontrol show job`` sees it."""

    job_id: str
    state: str
    reason: str
    exit_code: int = 0
    signal: int = 0


_ARRAY_RANGE = re.compile(r"([0-9]+)_\[([0-9,\-]+)(?:%[0-9]+)?\]")


def expand_array_id(job_id: str) -> list[str]:
    """``20_[1-3%1]`` (array tasks not yet started) → ``["20_1", "20_2", "20_3"]``; others unchanged."""
    match = _ARRAY_RANGE.fullmatch(job_id)
    if not match:
        return [job_id]
    tasks = []
    for part in match[2].split(","):
        low, _, high = part.partition("-")
        tasks += range(int(low), int(high or low) + 1)
    return [f"{match[1]}_{t}" for t in tasks]


def build_sacct(job_ids: Iterable[str], start_time: str) -> list[str]:
    """argv of one batched sacct over ``job_ids`` (array IDs cover their tasks), bounded by start time."""
    return ["sacct", "--parsable2", "--noheader", f"--format={','.join(SACCT_FIELDS)}",
            f"--starttime={start_time}", "--jobs", ",".join(validate_job_id(j) for j in job_ids)]


def parse_size(text: str) -> int | None:
    """Bytes in a SLURM size such as ``1156K`` or ``2.5G``; None when empty."""
    match = re.fullmatch(r"([0-9.]+)([KMGT]?)", text.strip())
    return int(float(match[1]) * SLURM_SUFFIXES[match[2]]) if match else None


def parse_elapsed(text: str) -> float:
    """Seconds in ``[D-]HH:MM:SS[.fff]`` or ``MM:SS[.fff]`` (SLURM's elapsed and CPU-time formats)."""
    days, _, clock = text.rpartition("-")
    parts = [float(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return (int(days) if days else 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def parse_sacct(text: str) -> list[SacctRow]:
    """Rows of ``sacct --parsable2 --noheader --format=<SACCT_FIELDS>`` output; a pending array's
    ``123_[1-3]`` line becomes one row per task."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        values = line.split("|")
        if len(values) != len(SACCT_FIELDS):
            raise SchedulerError(f"sacct: unexpected line {line!r}; expected {len(SACCT_FIELDS)} fields")
        field = dict(zip(SACCT_FIELDS, values))
        job_id, _, step = field["JobID"].partition(".")
        state, _, detail = field["State"].partition(" ")
        code, _, sig = field["ExitCode"].partition(":")
        for task_id in expand_array_id(job_id):
            rows.append(SacctRow(task_id, step or None, state, detail, int(code or 0), int(sig or 0),
                                 parse_size(field["MaxRSS"]), field["ReqMem"], parse_elapsed(field["Elapsed"]),
                                 field["Start"], field["End"], field["Reason"], parse_elapsed(field["TotalCPU"])))
    return rows


def build_squeue() -> list[str]:
    """argv listing all of this user's jobs, array tasks one per line: ``id|state|reason``."""
    return ["squeue", "--noheader", "--me", "--array", "--format=%i|%T|%r"]


def parse_squeue(text: str) -> list[QueueRow]:
    rows = []
    for line in text.splitlines():
        if line.strip():
            job_id, state, reason = line.strip().split("|", 2)
            rows += [QueueRow(task, state, reason) for task in expand_array_id(job_id)]
    return rows


def build_scontrol_show() -> list[str]:
    """argv listing every job slurmctld still holds (finished ones for MinJobAge), one per line."""
    return ["scontrol", "show", "job", "--oneliner"]


def parse_scontrol_show(text: str) -> list[QueueRow]:
    """Rows of ``scontrol show job --oneliner``; array tasks are named ``<ArrayJobId>_<ArrayTaskId>``."""
    rows = []
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "JobId" not in fields or "JobState" not in fields:
            continue
        job_id = fields["JobId"]
        task = fields.get("ArrayTaskId", "")
        if fields.get("ArrayJobId") and task:  # "2", or "1-3%1" for tasks not yet started
            job_id = f"{fields['ArrayJobId']}_{task}" if task.isdigit() else f"{fields['ArrayJobId']}_[{task}]"
        code, _, sig = fields.get("ExitCode", "0:0").partition(":")
        rows += [QueueRow(task, fields["JobState"], fields.get("Reason", ""), int(code or 0), int(sig or 0))
                 for task in expand_array_id(job_id)]
    return rows


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
    return parse_sbatch(run(build_sbatch(hold=True), stdin=script, env=jobenv.sbatch_env()))


def run_release(job_id: str) -> None:
    run(["scontrol", "release", validate_job_id(job_id)])


def run_cancel(job_id: str) -> None:
    run(["scancel", validate_job_id(job_id)])


def run_sacct(job_ids: Iterable[str], start_time: str) -> list[SacctRow]:
    return parse_sacct(run(build_sacct(job_ids, start_time)))


def run_squeue() -> list[QueueRow]:
    return parse_squeue(run(build_squeue()))


def run_scontrol_show() -> list[QueueRow]:
    return parse_scontrol_show(run(build_scontrol_show()))


def run_squeue_states(job_id: str) -> list[str]:
    """The job's states in the queue; empty once it has left it."""
    return run(build_squeue_states(job_id)).split()
