"""The login side never imports TensorFlow or Keras, hyperopt or Optuna only where a space is built,
matplotlib only for reports, and submitit only where the local backend starts a job."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import PROBE, REPO, v4_config


def test_tensorflow_is_installed_so_this_check_means_something() -> None:
    assert all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras", "optuna", "submitit"))


@pytest.mark.parametrize("args", [["--help"], ["validate", "CONFIG"], ["submit", "--dry-run", "--local", "CONFIG"],
                                  ["diff", "CONFIG", "CONFIG"], ["status"], ["sync"]],
                         ids=["help", "validate", "dry-run", "diff", "status", "sync"])
def test_cli_leaves_heavy_modules_out(args: list[str], write_config: Callable[..., Path], workdir: Path) -> None:
    cfg = v4_config()
    cfg["model_parameters"]["algorithm"] = "optuna_tpe"  # checked for where the job runs, not imported
    path = write_config(cfg)
    (workdir / "registry").mkdir()  # status and sync refuse a registry that does not exist
    argv = ["--registry", str(workdir / "registry"), *[str(path) if a == "CONFIG" else a for a in args]]
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    assert report["loaded"] == []
