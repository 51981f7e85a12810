"""The memory estimate from a real scan: the arithmetic of docs/config.md on known data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from orchestrator.config import load_config
from orchestrator.memory import FRAMEWORK_OVERHEAD_GB, GIB, HEADROOM, PIPELINE_COPIES, estimate
from orchestrator.npz import read_array
from orchestrator.scan import scan
from tests.conftest import v4_config


def test_estimate_counts_samples_balance_and_max_samples(write_config: Callable[..., Path],
                                                         data_root: Path) -> None:
    files = sorted(data_root.glob("*/*_planeX.npz"))
    labels = [read_array(f, "metadata")[:, 2] for f in files]
    total = sum(len(x) for x in labels)
    cfg = v4_config()
    cfg["dataset_parameters"]["balance_data"] = False
    plain = estimate(config := load_config(write_config(cfg)), scan(config, "X"))
    per_sample = (128 * 16 + 13 + 1) * 4
    assert plain.samples_found == plain.samples_loaded == plain.samples_after_balance == total
    assert plain.bytes_per_sample == per_sample
    assert math.isclose(plain.peak_gb, total * per_sample / GIB * PIPELINE_COPIES + FRAMEWORK_OVERHEAD_GB,
                        rel_tol=1e-3)
    assert plain.request_gb == max(2, math.ceil(plain.peak_gb * HEADROOM))

    cfg["dataset_parameters"].update(balance_data=True, max_samples=100)
    balanced = estimate(config := load_config(write_config(cfg)), scan(config, "X"))
    positives = sum(int(x.sum()) for x in labels) / total  # every file is sampled at this size
    assert balanced.samples_loaded == 100
    train = 100 * cfg["dataset_parameters"]["train_fraction"]  # only the training split is balanced
    assert balanced.samples_after_balance == round(100 - train + 2 * min(positives, 1 - positives) * train)
