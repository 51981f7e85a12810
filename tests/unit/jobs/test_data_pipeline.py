"""The job's data pipeline on real NPZ files (numpy only, no Keras)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from jobs import data
from orchestrator.core.config_file import load_config
from orchestrator.core.errors import InputError
from tests.helpers import v4_config


def tagged_dataset(root: Path, files: int = 4, per_file: int = 50, seed: int = 0) -> None:
    """Files where image[:, 0, 0] and metadata[:, 0] both carry a unique sample ID, so alignment of
    images, labels and metadata can be checked after any reordering."""
    rng = np.random.default_rng(seed)
    next_id = 1
    for production in ("es", "cc"):
        (root / production).mkdir(parents=True)
        for k in range(files):
            ids = np.arange(next_id, next_id + per_file, dtype=np.float32)
            next_id += per_file
            images = rng.random((per_file, 128, 16), dtype=np.float32)
            images[:, 0, 0] = ids
            meta = np.zeros((per_file, 13), dtype=np.float32)
            meta[:, 0] = ids
            meta[:, 2] = rng.random(per_file) < 0.2
            np.savez_compressed(root / production / f"p_{k}_planeX.npz", images=images, metadata=meta)


@pytest.fixture
def tagged(workdir: Path, write_config: Callable[..., Path]) -> Callable[..., tuple]:
    def make(**dataset: object) -> tuple:
        root = workdir / "tagged"
        if not root.exists():
            tagged_dataset(root)
        cfg = v4_config()
        cfg["data_directories"] = [str(root / "es"), str(root / "cc")]
        cfg["dataset_parameters"].update(dataset)
        return load_config(write_config(cfg)), root
    return make


def test_prepare_keeps_images_labels_metadata_aligned_and_stratified(tagged: Callable[..., tuple],
                                                                     workdir: Path) -> None:
    config, _ = tagged(balance_data=False)
    record = data.prepare(config, "X", workdir / "cache", "hash")
    total = 0
    for split in data.SPLITS:
        images, labels = data.open_split(workdir / "cache", split)
        meta = np.load(workdir / "cache" / f"{split}_metadata.npy")
        assert isinstance(images.base, np.memmap) or isinstance(images, np.memmap)
        np.testing.assert_array_equal(images[:, 0, 0, 0], meta[:, 0])
        np.testing.assert_array_equal(labels, meta[:, 2])
        total += len(labels)
    assert total == record["samples_loaded"] == 400
    positives = {s: record["splits"][s]["positives"] / record["splits"][s]["samples"] for s in data.SPLITS}
    overall = sum(r["positives"] for r in record["splits"].values()) / total
    assert all(abs(p - overall) < 0.03 for p in positives.values())  # stratified
    assert record["splits"]["train"]["samples"] == pytest.approx(280, abs=2)


def test_undersampling_balances_the_training_split_only(tagged: Callable[..., tuple], workdir: Path) -> None:
    config, _ = tagged(balance_data=True, balance_method="undersample")
    record = data.prepare(config, "X", workdir / "cache", "hash")
    train = record["splits"]["train"]
    assert train["positives"] * 2 == train["samples"]
    assert record["splits"]["val"]["positives"] * 2 < record["splits"]["val"]["samples"]
    images, labels = data.open_split(workdir / "cache", "train")
    meta = np.load(workdir / "cache" / "train_metadata.npy")
    np.testing.assert_array_equal(images[:, 0, 0, 0], meta[:, 0])
    assert len(np.unique(meta[:, 0])) == len(meta)  # undersampling repeats nothing


def test_oversampling_repeats_minority_samples_with_their_images(tagged: Callable[..., tuple],
                                                                 workdir: Path) -> None:
    config, _ = tagged(balance_data=True, balance_method="oversample")
    record = data.prepare(config, "X", workdir / "cache", "hash")
    train = record["splits"]["train"]
    assert train["positives"] * 2 == train["samples"]
    images, labels = data.open_split(workdir / "cache", "train")
    meta = np.load(workdir / "cache" / "train_metadata.npy")
    np.testing.assert_array_equal(images[:, 0, 0, 0], meta[:, 0])
    np.testing.assert_array_equal(labels, meta[:, 2])


def test_max_samples_reads_only_the_files_it_needs(tagged: Callable[..., tuple], monkeypatch) -> None:
    config, _ = tagged(max_samples=120)
    opened: list[str] = []
    original = data.read_arrays

    def counting(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        opened.append(path.name)
        return original(path, names)

    monkeypatch.setattr(data, "read_arrays", counting)
    loaded = data.load(config, "X")
    assert len(loaded.labels) == 120
    assert len(opened) == 3  # 50 + 50 + 20 samples: 3 of the 8 files are read, each once


def test_label_column_is_the_configured_one(tagged: Callable[..., tuple]) -> None:
    config, _ = tagged(label={"array": "metadata", "column": 3})  # is_es, not the default is_main_track (2)
    loaded = data.load(config, "X")
    np.testing.assert_array_equal(loaded.labels, loaded.metadata[:, 3])
    assert not np.array_equal(loaded.labels, loaded.metadata[:, 2])


@pytest.mark.parametrize("method", ["max", "standardize"])
def test_per_image_normalization(tagged: Callable[..., tuple], method: str) -> None:
    config, _ = tagged(normalization=method)
    images = data.load(config, "X").images
    if method == "max":
        np.testing.assert_allclose(np.abs(images).max(axis=(1, 2)), 1.0, rtol=1e-6)
    else:
        np.testing.assert_allclose(images.mean(axis=(1, 2)), 0.0, atol=1e-4)
        np.testing.assert_allclose(images.std(axis=(1, 2)), 1.0, rtol=1e-3)


def test_a_file_corrupt_at_run_time_follows_the_policy(tagged: Callable[..., tuple], monkeypatch) -> None:
    config, root = tagged(bad_files="skip")
    victim = root / "cc" / "p_1_planeX.npz"
    original = data.read_arrays

    def failing(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        if path == victim:  # headers were fine; the data is not (an I/O error)
            raise data.BadFile("cannot read array 'images': Error -3 while decompressing data")
        return original(path, names)

    monkeypatch.setattr(data, "read_arrays", failing)
    loaded = data.load(config, "X")
    assert len(loaded.labels) == 350 and loaded.files_used == 7
    assert loaded.bad_files == [(str(victim), "cannot read array 'images': Error -3 while decompressing data")]
    config, _ = tagged(bad_files="fail")
    with pytest.raises(InputError, match="p_1_planeX.npz: cannot read array"):
        data.load(config, "X")


def test_cache_is_reused_for_the_same_config_only(tagged: Callable[..., tuple], workdir: Path) -> None:
    config, _ = tagged()
    first = data.prepare(config, "X", workdir / "cache", "hash-a")
    marker = workdir / "cache" / "ready.json"
    assert json.loads(marker.read_text()) == first
    (workdir / "cache" / "train_labels.npy").write_bytes(b"stale")
    assert data.prepare(config, "X", workdir / "cache", "hash-a") == first  # reused, not rebuilt
    data.prepare(config, "X", workdir / "cache", "hash-b")
    assert np.load(workdir / "cache" / "train_labels.npy").shape[0] == first["splits"]["train"]["samples"]


def test_the_job_refuses_a_file_by_the_pre_flights_header_rule(tagged: Callable[..., tuple]) -> None:
    config, root = tagged(bad_files="skip")
    victim = root / "es" / "p_2_planeX.npz"
    with np.load(victim) as npz:
        images, meta = npz["images"], npz["metadata"]
    np.savez(victim, images=images, metadata=meta[:12])  # fewer label rows than images
    loaded = data.load(config, "X")
    assert loaded.bad_files == [(str(victim), "metadata has (12,) rows but images has 50")]
    assert len(loaded.labels) == 350 and loaded.files_used == 7


def spoil_pixels(path: Path, rows: list[int]) -> list[float]:
    """Put a NaN pixel (and, in the first row, a -Inf too) in the given samples of a tagged file; their IDs."""
    with np.load(path) as npz:
        images, meta = npz["images"], npz["metadata"]
    images[rows, 7, 3] = np.nan
    images[rows[0], 9, 1] = -np.inf
    np.savez_compressed(path, images=images, metadata=meta)
    return meta[rows, 0].tolist()


def test_samples_with_non_finite_pixels_are_left_out_and_counted(tagged: Callable[..., tuple],
                                                                workdir: Path) -> None:
    config, root = tagged(bad_files="skip", balance_data=False)
    first, second = root / "cc" / "p_1_planeX.npz", root / "es" / "p_3_planeX.npz"
    spoiled = spoil_pixels(first, [4, 9]) + spoil_pixels(second, [0])
    record = data.prepare(config, "X", workdir / "cache", "hash")
    assert record["non_finite_samples"] == 3 and record["samples_loaded"] == 397 and record["files_used"] == 8
    assert sorted(record["bad_files"], key=lambda b: b["path"]) == [
        {"path": str(first), "reason": "3 non-finite pixels (NaN or ±Inf) in 2 of 50 samples",
         "non_finite_samples": 2},
        {"path": str(second), "reason": "2 non-finite pixels (NaN or ±Inf) in 1 of 50 samples",
         "non_finite_samples": 1}]
    ids = np.concatenate([np.load(workdir / "cache" / f"{s}_metadata.npy")[:, 0] for s in data.SPLITS])
    assert set(ids.tolist()) == set(range(1, 401)) - set(spoiled)  # every other sample of those files kept
    assert all(np.isfinite(data.open_split(workdir / "cache", s)[0]).all() for s in data.SPLITS)


def test_non_finite_pixels_fail_the_job_under_fail(tagged: Callable[..., tuple]) -> None:
    config, root = tagged(bad_files="fail")
    spoil_pixels(root / "es" / "p_2_planeX.npz", [5, 6, 7])
    with pytest.raises(InputError) as caught:
        data.load(config, "X")
    assert str(caught.value) == (f"{root / 'es' / 'p_2_planeX.npz'}: 4 non-finite pixels (NaN or ±Inf) in 3 of 50 "
                                 f"samples (dataset_parameters.bad_files is \"fail\")")
