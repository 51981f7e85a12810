"""The real-SLURM fixture: tests that need the cluster skip locally and fail in CI without it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

START = "scripts/local-slurm start"


def cluster_problem() -> str | None:
    """Why the local SLURM cannot take jobs, or None when it can."""
    if shutil.which("sbatch") is None:
        return "sbatch is not installed"
    try:
        result = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s"
    if result.returncode != 0:
        return result.stderr.strip() or "sinfo failed"
    states = result.stdout.split()
    if not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        return f"no usable node (states: {' '.join(states) or 'none'})"
    return None


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running SLURM; with ORCH_REQUIRE_SLURM=1 (CI) its absence fails the test instead of skipping it."""
    problem = cluster_problem()
    if problem:
        message = f"needs a running SLURM ({problem}); start one with: {START} (as root)"
        if os.environ.get("ORCH_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)
