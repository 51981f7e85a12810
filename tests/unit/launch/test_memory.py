"""The memory estimate from a real scan: the arithmetic of docs/config.md on known data."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

from orchestrator.core.config_file import load_config
from orchestrator.core.datafiles import read_array
from orchestrator.launch.memory import (
    ACTIVATION_COPIES,
    FRAMEWORK_GB,
    GIB,
    HEADROOM,
    JOB_GB,
    PARAMETER_COPIES,
    PIPELINE_COPIES,
    MemoryEstimate,
    Network,
    calibrate,
    estimate,
    largest_network,
    network_terms,
)
from orchestrator.launch.scan import DataFile, DirScan, ScanReport, scan
from tests.helpers import v4_config


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
    assert plain.network == Network(2, 256, 5, 3, 256, 256)  # v4's largest: the top of each key but depth 2 of 2-4
    assert plain.samples_mapped == round(total * 0.85)  # a trial maps the training and validation splits
    network_gb = FRAMEWORK_GB + plain.parameters_gb + plain.activations_gb
    assert math.isclose(plain.trial_gb, plain.samples_mapped * per_sample / GIB + network_gb, rel_tol=1e-3)
    assert math.isclose(plain.load_gb, total * per_sample / GIB * PIPELINE_COPIES, rel_tol=1e-3)
    assert math.isclose(plain.peak_gb, JOB_GB + plain.trial_gb, rel_tol=1e-3)  # a few MB of data: the trial's peak
    assert plain.request_gb == max(2, math.ceil(plain.peak_gb * HEADROOM))

    cfg["dataset_parameters"].update(balance_data=True, max_samples=100)
    balanced = estimate(config := load_config(write_config(cfg)), scan(config, "X"))
    positives = sum(int(x.sum()) for x in labels) / total  # every file is sampled at this size
    assert balanced.samples_loaded == 100
    train = 100 * cfg["dataset_parameters"]["train_fraction"]  # only the training split is balanced
    assert balanced.samples_after_balance == round(100 - train + 2 * min(positives, 1 - positives) * train)
    assert balanced.samples_mapped == round(2 * min(positives, 1 - positives) * train + 15)


def test_loading_or_a_trial_whichever_is_larger(write_config: Callable[..., Path]) -> None:
    def peak(samples: int, balance: bool) -> MemoryEstimate:
        cfg = v4_config()
        cfg["dataset_parameters"]["balance_data"] = balance
        files = [DataFile(Path("/data/x.npz"), samples, (128, 16))]
        return estimate(load_config(write_config(cfg)), ScanReport("X", [DirScan(
            Path("/data"), "X", files, meta_columns=Counter({13: 1}), label_samples=100, label_positives=14)],
            (128, 16), 0))

    per_sample = (128 * 16 + 13 + 1) * 4
    big = peak(2_000_000, balance=True)  # 15 GiB: the job process reading the files is the peak
    assert big.samples_mapped == round(2 * 0.14 * 0.7 * 2_000_000 + 0.15 * 2_000_000)
    assert big.load_gb > big.trial_gb and big.peak_gb == round(JOB_GB + 2_000_000 * per_sample / GIB * 1.05, 3)
    small = peak(200_000, balance=True)  # 1.5 GiB, a trial maps 0.6 GiB of it: the trial's network decides
    assert small.trial_gb > small.load_gb and small.peak_gb == round(JOB_GB + small.trial_gb, 3)
    assert peak(200_000, balance=False).peak_gb > small.peak_gb  # unbalanced, a trial maps 85 % of the data


def test_network_counts_by_hand() -> None:
    # 8×4×1 → conv(3 filters, 3×3) 8×4×3, pool 4×2×3 → conv 4×2×3, pool 2×1×3 → flatten 6 → dense 5 → head 1
    net = Network(n_conv_layers=2, n_filters=3, kernel_size=3, n_dense_layers=1, n_dense_units=5, batch_size=10)
    params = (9 * 1 * 3 + 3) + (9 * 3 * 3 + 3) + (6 * 5 + 5) + (5 + 1)
    activations = (8 * 4 * 3 + 4 * 2 * 3) + (4 * 2 * 3 + 2 * 1 * 3) + 5 + 1
    assert net.counts((8, 4, 1)) == (params, activations) == (155, 156)
    assert network_terms(net, (8, 4, 1)) == (155 * 4 * PARAMETER_COPIES / GIB, 10 * 156 * 4 * ACTIVATION_COPIES / GIB)
    # pooling stops along a dimension of 1, and a 1×1 map is not pooled at all; no dense layer: the head on the flat map
    deep = Network(n_conv_layers=3, n_filters=2, kernel_size=1, n_dense_layers=0, n_dense_units=64, batch_size=1)
    assert deep.counts((4, 1, 1)) == ((2 + 2) + (4 + 2) + (4 + 2) + (2 + 1), (8 + 4) + (4 + 2) + 2 + 1)


def test_estimate_grows_with_the_space_s_largest_network(write_config: Callable[..., Path]) -> None:
    def peak(**space: list[int]) -> float:
        cfg = v4_config()
        cfg["model_parameters"]["space_options"].update(space)
        return estimate(load_config(write_config(cfg)), report).peak_gb

    report = scan(load_config(write_config(v4_config())), "X")
    base = dict(n_filters=[32, 64], n_conv_layers=[2, 3], n_dense_units=[16], batch_size=[64, 128])
    smaller = peak(**base)
    for key, top in (("n_filters", 128), ("n_conv_layers", 4), ("batch_size", 256)):
        assert peak(**{**base, key: [*base[key], top]}) > smaller, key
    assert peak(**{**base, "n_filters": [16, 64]}) == smaller  # the low end does not count
    # with wide dense layers a 4th conv block shrinks the first dense layer more than it adds: 3 stays the largest
    wide = {**base, "n_dense_units": [4096]}
    assert (peak(**{**wide, "n_conv_layers": [3, 4]}) == peak(**{**wide, "n_conv_layers": [3]})
            > peak(**{**wide, "n_conv_layers": [4]}))


def test_largest_network_takes_each_size_key_s_top_and_the_larger_batch(write_config: Callable[..., Path]) -> None:
    cfg = v4_config()
    cfg["model_parameters"]["space_options"] = {"n_filters": {"quniform": [8, 70, 16]}, "n_dense_layers": [0, 2]}
    cfg["model_parameters"]["batch_size"] = 96
    assert largest_network(load_config(write_config(cfg))) == Network(2, 64, 3, 2, 64, 96)  # unsearched: defaults
    cfg["model_parameters"]["space_options"]["batch_size"] = [32, 512]
    assert largest_network(load_config(write_config(cfg))).batch_size == 512


def test_calibration_scales_by_the_worst_recent_ratio() -> None:
    base = MemoryEstimate(1000, 1000, 1000, 850, 8000, 10.0, 1.05, 10.5, Network(2, 32, 3, 1, 64, 128), 0, 0, 0.62,
                          0.0, 0.0, 7.5, 0.11, 11.5, 1.2, 14)
    calibrated = calibrate(base, [("3", 9.2, 11.5), ("2", 6.9, 11.5), ("1", 1.0, None)])
    assert calibrated.calibration_factor == pytest.approx(0.8)
    assert calibrated.peak_gb == pytest.approx(9.2) and calibrated.request_gb == 12
    assert calibrated.calibrated_from == ("3", "2")
    assert calibrate(base, []) == base
