"""The job's data pipeline: per-plane NPZ files → one preallocated array → split .npy cache.

1. The files of every data directory are listed and their headers read (no data).
2. With ``max_samples``, files are taken in (seeded) order until enough samples are
   covered, so only what is used is ever read.
3. Images, labels and metadata are read file by file into arrays allocated once
   (peak ≈ the data plus one file; list + concatenate would be ~2×).
4. A stratified train/val/test split by all three fractions; balancing
   (undersample/oversample) is applied to the training split only, to images,
   labels and metadata together, so validation and test keep the real class ratio.
5. Each split is written to ``cache/<split>_{images,labels,metadata}.npy`` in chunks,
   so every trial maps the data (``np.load(mmap_mode="r")``) instead of reloading it.

A file that is bad at run time follows ``dataset_parameters.bad_files`` and is counted; so do
samples whose images hold NaN or ±Inf pixels: under "skip" only those samples are left out.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.core.config import Config
from orchestrator.core.datafiles import (
    BadFile,
    check_headers,
    find_files,
    label_column,
    non_finite,
    read_arrays,
    read_headers,
)
from orchestrator.core.errors import InputError
from orchestrator.core.files import make_dir, write_atomic, write_json_atomic
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths

SPLITS = ("train", "val", "test")
CHUNK = 4096  # samples per write when gathering a split into its .npy file


@dataclass
class Loaded:
    """The samples of one plane, in one set of arrays (views of the preallocated ones)."""

    images: np.ndarray  # (n, H, W) float32
    labels: np.ndarray  # (n,) uint8
    metadata: np.ndarray  # (n, C) float32, NaN where a file had fewer columns
    files_used: int
    bad_files: list[tuple[str, str]]
    non_finite_samples: dict[str, int]  # file → its samples left out for NaN or ±Inf pixels


def plan_files(config: Config, plane: str) -> tuple[list[tuple[Path, int]], list[tuple[str, str]], int]:
    """The files to read with how many samples of each, the bad files skipped, and the metadata width."""
    pattern = config.dataset.pattern_for(plane)
    label = config.dataset.label
    found: list[tuple[Path, int]] = []
    bad: list[tuple[str, str]] = []
    columns = 0
    for directory in config.data_directories:
        for path in find_files(directory, pattern, plane):
            try:
                n, shape, meta_columns = check_headers(read_headers(path), label.array, label.column)
                if shape != config.model.input_shape[:2]:
                    raise BadFile(f"images are {shape[0]}×{shape[1]}, not input_shape")
            except BadFile as exc:
                _bad(config, path, str(exc), bad)
                continue
            found.append((path, n))
            columns = max(columns, meta_columns or 0)
    if config.dataset.shuffle_data:
        order = np.random.default_rng(config.dataset.random_seed).permutation(len(found))
        found = [found[i] for i in order]
    if config.dataset.max_samples is not None:
        taken, total = [], 0
        for path, n in found:
            if total >= config.dataset.max_samples:
                break
            taken.append((path, min(n, config.dataset.max_samples - total)))
            total += taken[-1][1]
        found = taken
    if not found:
        raise InputError(str(config.path), f"no usable data file for plane {plane}")
    return found, bad, columns


def _bad(config: Config, path: Path, why: str, bad: list[tuple[str, str]]) -> None:
    if config.dataset.bad_files == "fail":
        raise InputError(str(path), f"{why} (dataset_parameters.bad_files is \"fail\")")
    bad.append((str(path), why))


def load(config: Config, plane: str) -> Loaded:
    """Read the planned files into arrays allocated once."""
    files, bad, columns = plan_files(config, plane)
    height, width = config.model.input_shape[:2]
    total = sum(n for _, n in files)
    images = np.empty((total, height, width), dtype=np.float32)
    labels = np.empty(total, dtype=np.uint8)
    metadata = np.full((total, columns), np.nan, dtype=np.float32)
    label = config.dataset.label
    names = tuple(dict.fromkeys(("images", label.array, *(("metadata",) if columns else ()))))
    offset = used = 0
    dropped: dict[str, int] = {}
    for path, n in files:
        try:
            arrays = read_arrays(path, names)
            file_images = arrays["images"][:n].astype(np.float32, copy=False)  # checked as the trials see it
            file_labels = label_column(arrays[label.array], label)[:n]
            if not np.isin(file_labels, (0, 1)).all():
                raise BadFile(f"label {label.describe()} is not binary")
            meta = arrays["metadata"][:n] if columns else None
        except BadFile as exc:
            _bad(config, path, str(exc), bad)
            continue
        unfit = non_finite(file_images)
        if unfit.samples:
            _bad(config, path, unfit.describe(), bad)
            dropped[str(path)] = unfit.samples
            keep = ~unfit.mask
            file_images, file_labels = file_images[keep], file_labels[keep]
            meta = meta[keep] if meta is not None else None
        n = len(file_labels)
        images[offset:offset + n] = file_images
        labels[offset:offset + n] = file_labels
        if meta is not None and meta.ndim == 2:
            metadata[offset:offset + n, :meta.shape[1]] = meta
        offset += n
        used += 1
    normalize(images[:offset], config.dataset.normalization)
    return Loaded(images[:offset], labels[:offset], metadata[:offset], used, bad, dropped)


def normalize(images: np.ndarray, method: str) -> None:
    """Per-image normalization in place: "max" scales each image to max |x| = 1, "standardize"
    to zero mean and unit variance; "none" leaves the data as stored."""
    if method == "none":
        return
    for start in range(0, len(images), CHUNK):
        block = images[start:start + CHUNK]
        if method == "max":
            scale = np.abs(block).max(axis=(1, 2), keepdims=True)
            block /= np.where(scale > 0, scale, 1)
        else:
            block -= block.mean(axis=(1, 2), keepdims=True)
            std = block.std(axis=(1, 2), keepdims=True)
            block /= np.where(std > 0, std, 1)


def split_indices(labels: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator,
                  shuffle: bool) -> dict[str, np.ndarray]:
    """Stratified train/val/test indices: each class is cut by the same fractions."""
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        if shuffle:
            idx = rng.permutation(idx)
        n_train = int(round(len(idx) * fractions[0]))
        n_val = int(round(len(idx) * fractions[1]))
        for name, part in zip(SPLITS, np.split(idx, [n_train, n_train + n_val])):
            parts[name].append(part)
    out = {}
    for name in SPLITS:
        joined = np.concatenate(parts[name])
        out[name] = rng.permutation(joined) if shuffle else np.sort(joined)
    return out


def balance_indices(indices: np.ndarray, labels: np.ndarray, method: str, rng: np.random.Generator) -> np.ndarray:
    """``indices`` with the classes made equal: drop majority samples, or repeat minority ones."""
    pos = indices[labels[indices] == 1]
    neg = indices[labels[indices] == 0]
    minority, majority = sorted((pos, neg), key=len)
    if len(minority) == 0:
        return indices
    if method == "undersample":
        majority = rng.choice(majority, size=len(minority), replace=False)
    else:
        minority = np.concatenate([minority, rng.choice(minority, size=len(majority) - len(minority))])
    return rng.permutation(np.concatenate([minority, majority]))


def write_npy(path: Path, source: np.ndarray, index: np.ndarray) -> None:
    """Write ``source[index]`` as a .npy file in chunks (no full gathered copy in memory)."""
    header = {"descr": np.lib.format.dtype_to_descr(source.dtype), "fortran_order": False,
              "shape": (len(index), *source.shape[1:])}

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as handle:
            np.lib.format.write_array_header_2_0(handle, header)
            for start in range(0, len(index), CHUNK):
                handle.write(np.ascontiguousarray(source[index[start:start + CHUNK]]).tobytes())

    write_atomic(path, write)


def prepare(config: Config, plane: str, cache: Path, config_sha256: str) -> dict[str, Any]:
    """The search's split cache (reused by every worker and attempt when the config is the same),
    built when missing; return the data record. It is built in a folder of this process's own and
    renamed into place whole: workers that start together each build it, the first rename wins and
    the others' copies are removed."""
    marker = JobPaths.cache_record(cache)
    if marker.exists():
        record = read_json(marker)
        if record.get("config_sha256") == config_sha256:
            return record
        shutil.rmtree(cache)  # a cache of another config (the frozen config never changes in a search)
    building = cache.with_name(f".{cache.name}.{os.getpid()}.{secrets.token_hex(3)}")
    make_dir(building)
    try:
        record = build(config, plane, building, config_sha256)
        try:
            os.rename(building, cache)
        except OSError:  # a cache is in place already
            if not marker.exists():  # half-written by a version of orch that built it in place
                shutil.rmtree(cache)
                os.rename(building, cache)
                return record
            shutil.rmtree(building, ignore_errors=True)  # another worker's, complete: use it
            return read_json(marker)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return record


def build(config: Config, plane: str, cache: Path, config_sha256: str) -> dict[str, Any]:
    """Load, split, balance and write the splits into ``cache``; the data record (also ``ready.json``)."""
    started = time.monotonic()
    loaded = load(config, plane)
    load_s = time.monotonic() - started
    ds = config.dataset
    dropped = loaded.non_finite_samples
    rng = np.random.default_rng(ds.random_seed)
    splits = split_indices(loaded.labels, (ds.train_fraction, ds.val_fraction, ds.test_fraction), rng,
                           ds.shuffle_data)
    if ds.balance_data:
        splits["train"] = balance_indices(splits["train"], loaded.labels, ds.balance_method, rng)
    for name, index in splits.items():
        if len(index) == 0:
            raise InputError(str(config.path), f"dataset_parameters: the {name} split is empty with "
                                               f"{len(loaded.labels)} samples")
        for array, source in (("images", loaded.images), ("labels", loaded.labels), ("metadata", loaded.metadata)):
            write_npy(JobPaths.split_file(cache, name, array), source, index)
    record = {
        "config_sha256": config_sha256, "plane": plane, "samples_loaded": int(len(loaded.labels)),
        "data_bytes": int(loaded.images.nbytes + loaded.labels.nbytes + loaded.metadata.nbytes),
        "files_used": loaded.files_used, "non_finite_samples": sum(dropped.values()),
        "bad_files": [{"path": p, "reason": r, **({"non_finite_samples": dropped[p]} if p in dropped else {})}
                      for p, r in loaded.bad_files],
        "splits": {n: {"samples": int(len(i)), "positives": int(loaded.labels[i].sum())} for n, i in splits.items()},
        "balanced": ds.balance_method if ds.balance_data else None, "normalization": ds.normalization,
        "load_s": round(load_s, 3), "prepare_s": round(time.monotonic() - started, 3),
    }
    write_json_atomic(JobPaths.cache_record(cache), record)
    return record


def open_split(cache: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's images (N, H, W, 1) and labels, memory-mapped read-only."""
    images = np.load(JobPaths.split_file(cache, name, "images"), mmap_mode="r")
    labels = np.load(JobPaths.split_file(cache, name, "labels"), mmap_mode="r")
    return images[..., np.newaxis], labels
