"""NaN and ±Inf pixels: the shared rule (``orchestrator.core.datafiles.non_finite``) and the pre-flight refusing them.

The job's side (samples left out, counted in ``data.json``) is in test_data_pipeline.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from orchestrator.core.config_file import load_config
from orchestrator.core.datafiles import non_finite
from orchestrator.launch.scan import scan
from tests.helpers import poison, v4_config

Orch = Callable[..., tuple[int, str, str]]


def test_non_finite_masks_the_samples_and_counts_the_pixels() -> None:
    images = np.zeros((5, 4, 3), dtype=np.float32)
    images[1, 0, 0] = np.nan
    images[1, 2, 1] = -np.inf
    images[3, 3, 2] = np.inf
    found = non_finite(images)
    assert found.mask.tolist() == [False, True, False, True, False]
    assert (found.samples, found.pixels) == (2, 3)
    assert found.describe() == "3 non-finite pixels (NaN or ±Inf) in 2 of 5 samples"
    clean = non_finite(np.ones((4, 2, 2), dtype=np.float32))
    assert (clean.samples, clean.pixels, clean.mask.tolist()) == (0, 0, [False] * 4)


@pytest.fixture
def poisoned(workdir: Path, data_root: Path, write_config: Callable[..., Path]) -> Callable[..., tuple]:
    """A copy of the synthetic data with NaN/Inf pixels in one file of es/; (config path, that file, its
    sample count) for the given ``dataset_parameters``."""
    data = workdir / "data"
    shutil.copytree(data_root, data)
    victim = sorted((data / "es").glob("*_planeX.npz"))[1]
    samples = poison(victim)

    def make(**dataset: object) -> tuple[Path, Path, int]:
        cfg = v4_config()
        cfg["data_directories"] = [str(data / "es"), str(data / "cc")]
        cfg["dataset_parameters"].update(dataset)
        return write_config(cfg), victim, samples

    return make


def test_validate_refuses_non_finite_pixels_naming_the_file_and_the_count(poisoned: Callable[..., tuple],
                                                                          orch: Orch) -> None:
    config, victim, samples = poisoned()
    code, out, err = orch("validate", str(config))
    assert code == 2
    assert err.strip().splitlines() == [
        f"orch: error: {victim}: 3 non-finite pixels (NaN or ±Inf) in 2 of {samples} samples; fix or remove it, "
        f"or set dataset_parameters.bad_files to \"skip\" in {config}"]


def test_validate_with_skip_lists_the_file_and_leaves_it_out(poisoned: Callable[..., tuple], orch: Orch,
                                                            workdir: Path) -> None:
    config, victim, samples = poisoned(bad_files="skip")
    code, out, err = orch("validate", str(config))
    assert code == 0, err
    assert f"  skipped {victim}: 3 non-finite pixels (NaN or ±Inf) in 2 of {samples} samples" in out.splitlines()
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == [str(workdir / "data" / "es")])
    kept = sum(len(np.load(p)["images"]) for p in (workdir / "data" / "es").glob("*_planeX.npz") if p != victim)
    assert (row[2], row[3], row[-1]) == ("2", f"{kept:,}", "1")  # files, samples, bad files


def test_the_pre_flight_without_the_pixel_check_reads_no_images(poisoned: Callable[..., tuple]) -> None:
    """What the validate bench times as its baseline: the same scan, the images left unread."""
    config = load_config(poisoned(bad_files="skip")[0])
    assert (scan(config, "X").bad_files, scan(config, "X", pixels=False).bad_files) == (1, 0)
