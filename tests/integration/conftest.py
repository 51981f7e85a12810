"""The real-SLURM and real-browser fixtures: tests that need them skip locally and fail in CI without
them (``ORCH_REQUIRE_SLURM=1``, ``ORCH_REQUIRE_BROWSER=1``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from orchestrator.launch.synthetic import generate

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


@pytest.fixture
def browser() -> Iterator[Callable[[], Any]]:
    """Opens a headless Debian Chromium driven by selenium, its browser log kept (quit after the test).
    Without chromium and chromedriver the test that opens it is skipped, or fails with
    ORCH_REQUIRE_BROWSER=1."""
    drivers: list[Any] = []

    def open_browser() -> Any:
        chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
        if not (chromium and driver_path):
            message = "needs Debian's chromium and chromium-driver (scripts/run-tests installs them as root)"
            if os.environ.get("ORCH_REQUIRE_BROWSER") == "1":
                pytest.fail(message)
            pytest.skip(message)
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,2400"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        drivers.append(webdriver.Chrome(service=Service(driver_path), options=options))
        return drivers[-1]

    yield open_browser
    for driver in drivers:
        driver.quit()


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic data of all three planes: 2 files per production of ~80 samples each."""
    root = tmp_path_factory.mktemp("small")
    generate(root, files_per_production=2, samples_per_file=80, seed=7)
    return root


@pytest.fixture
def small_config(workdir: Path, small_data: Path) -> Callable[..., Path]:
    """Write a config for a search that takes seconds; return its path (``<name>.json``, so v1)."""

    def write(name: str, evals: int = 2, epochs: int = 2, plane: Any = "X", seed: int = 42,
              resources: dict[str, Any] | None = None, model: dict[str, Any] | None = None, **top: Any) -> Path:
        cfg = {
            "model_name": "hyperopt_simple_cnn", "plane": plane,
            "data_directories": [str(small_data / "es"), str(small_data / "cc")],
            "dataset_parameters": {"train_fraction": 0.6, "val_fraction": 0.2, "test_fraction": 0.2,
                                   "random_seed": seed, "batch_pattern": "*_plane{plane}.npz"},
            "model_parameters": {"input_shape": [128, 16, 1], "hp_max_evals": evals, "epochs": epochs,
                                 "batch_size": 32,
                                 "space_options": {"n_filters": [4, 8], "n_dense_units": [8, 16],
                                                   "learning_rate": {"loguniform": [1e-4, 1e-2]}}, **(model or {})},
            "resources": {"cpus_per_task": 1, "time": "00:10:00", **(resources or {})}, **top,
        }
        path = workdir / "repo" / "json" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg))
        return path

    return write
