"""Without a cluster, SLURM tests skip locally and fail when ORCH_REQUIRE_SLURM=1, naming the script."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.parametrize("required, outcome", [("1", "error"), ("", "skipped")])
def test_missing_cluster(required: str, outcome: str, tmp_path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "ORCH_REQUIRE_SLURM": required}  # no sbatch on PATH
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider",
                             "tests/integration/test_slurm.py::test_scancel_ends_cancelled"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert f"1 {outcome}" in result.stdout, result.stdout
    assert "start one with: scripts/local-slurm start" in result.stdout
    assert (result.returncode != 0) == (outcome == "error")  # a setup error fails the run
