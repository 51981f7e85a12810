"""Sizes in one unit: orch counts memory in GiB (1024³ bytes), which is SLURM's ``G`` and the unit it
reads MaxRSS in. The only module where byte multiples are written."""

from __future__ import annotations

import math
import re
import resource

from orchestrator.core.errors import InputError

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
SLURM_SUFFIXES = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": TIB}  # SLURM's size suffixes, in bytes


def gib(nbytes: float) -> float:
    """``nbytes`` in GiB."""
    return nbytes / GIB


def mib_to_gib(mib: float) -> float:
    """A size given in MiB (the records' ``*_mb`` fields), in GiB."""
    return mib / KIB


def mib_to_bytes(mib: float) -> int:
    """A size given in MiB, in bytes."""
    return int(mib * MIB)


def peak_rss_mib(usage: resource.struct_rusage) -> float:
    """The peak resident set of a ``getrusage``/``wait4`` result (Linux gives KiB), in MiB to 0.1."""
    return round(usage.ru_maxrss / KIB, 1)


def slurm_mem(gib_value: float) -> str:
    """A memory request as sbatch's ``--mem`` takes it: whole GiB as ``G``, else rounded up to ``M``."""
    return f"{int(gib_value)}G" if float(gib_value).is_integer() else f"{math.ceil(gib_value * KIB)}M"


def parse_size_gib(text: str, option: str) -> float:
    """GiB in ``32G``, ``32GB``, ``512M`` or a bare number of GiB, given for ``option``; finite and above 0."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([GM]?)B?", text.strip(), re.IGNORECASE)
    size = float(match[1]) * SLURM_SUFFIXES[(match[2] or "G").upper()] / GIB if match else math.nan
    if not (math.isfinite(size) and size > 0):  # 401 digits make inf, not an OverflowError
        raise InputError(option, f"{text!r}: expected a size such as 32G or 512M")
    return size
