"""Data pre-flight: find every file a job will read and check it, without loading the data.

For each data directory and plane the glob is resolved (in the directory and in
its ``<plane>/`` subfolder), every file's array headers are read from inside the
zip (``orchestrator.core.datafiles``), and the label and images arrays are read from a
bounded, evenly spread sample of files to report the class balance and check the
pixels. Problems that make a job fail later are found here: missing directories,
globs matching nothing, 0-byte, truncated or unreadable files, missing arrays,
image shapes that differ across files or from ``input_shape``, NaN or ±Inf pixels
(in the files sampled), and labels that are constant or not binary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from orchestrator.core.config import Config, LabelSpec
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

SAMPLE_FILES = 16  # files per directory and plane whose label and images arrays are read


@dataclass(frozen=True)
class DataFile:
    """One usable file: its path, sample count and image shape (height, width)."""

    path: Path
    samples: int
    shape: tuple[int, int]


@dataclass
class DirScan:
    """What one data directory holds for one plane."""

    directory: Path
    plane: str
    files: list[DataFile] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)
    shapes: Counter = field(default_factory=Counter)  # (H, W) → files
    meta_columns: Counter = field(default_factory=Counter)
    label_samples: int = 0
    label_positives: int = 0

    @property
    def samples(self) -> int:
        return sum(f.samples for f in self.files)

    @property
    def positive_fraction(self) -> float | None:
        return self.label_positives / self.label_samples if self.label_samples else None


@dataclass
class ScanReport:
    """The pre-flight result for one plane of a config."""

    plane: str
    dirs: list[DirScan]
    image_shape: tuple[int, int]
    skipped_for_shape: int

    @property
    def samples(self) -> int:
        return sum(d.samples for d in self.dirs)

    @property
    def files(self) -> int:
        return sum(len(d.files) for d in self.dirs)

    @property
    def bad_files(self) -> int:
        return sum(len(d.bad) for d in self.dirs)

    @property
    def positive_fraction(self) -> float:
        """Positives among the label samples read, weighted by each directory's sample count."""
        weighted = [(d.positive_fraction, d.samples) for d in self.dirs if d.positive_fraction is not None]
        total = sum(n for _, n in weighted)
        return sum(f * n for f, n in weighted) / total if total else 0.0

    @property
    def meta_columns(self) -> int:
        return max((c for d in self.dirs for c in d.meta_columns), default=0)


def scan(config: Config, plane: str, *, pixels: bool = True) -> ScanReport:
    """Pre-flight one plane of ``config``; ``InputError`` on anything that would fail the job.
    ``pixels=False`` leaves the images of the sampled files unread and unchecked, as the pre-flight
    was before the pixel check (``bench/validate_speed.py`` measures the difference)."""
    src = str(config.path)
    pattern = config.dataset.pattern_for(plane)
    label = config.dataset.label
    dirs = []
    for i, directory in enumerate(config.data_directories):
        if not directory.is_dir():
            raise InputError(src, f"data_directories[{i}]: {directory} is not a directory")
        files = find_files(directory, pattern, plane)
        if not files:
            raise InputError(src, f"dataset_parameters.batch_pattern: {pattern!r} matches no file in {directory} "
                                  f"or {directory / plane}")
        dirs.append(_scan_dir(directory, plane, files, label, pixels))
    _check_bad(config, dirs)
    report = _check_shapes(config, plane, dirs)
    for d in report.dirs:
        if not d.files:
            raise InputError(src, f"data_directories: no usable file left in {d.directory} for plane {plane}")
    _check_labels(config, report)
    return report


def _scan_dir(directory: Path, plane: str, files: list[Path], label: LabelSpec, pixels: bool) -> DirScan:
    result = DirScan(directory, plane)
    for path in files:
        try:
            n, shape, columns = check_headers(read_headers(path), label.array, label.column)
        except BadFile as exc:
            result.bad.append((path, str(exc)))
            continue
        result.files.append(DataFile(path, n, shape))
        result.shapes[shape] += 1
        if columns is not None:
            result.meta_columns[columns] += 1
    names = ("images", label.array) if pixels else (label.array,)
    step = max(1, len(result.files) // SAMPLE_FILES)
    for data_file in result.files[::step][:SAMPLE_FILES]:
        path = data_file.path
        try:
            arrays = read_arrays(path, names)
            if pixels and (bad := non_finite(arrays["images"])).samples:
                raise BadFile(bad.describe())
        except BadFile as exc:
            result.bad.append((path, str(exc)))
            result.files.remove(data_file)
            result.shapes[data_file.shape] -= 1
            continue
        values = label_column(arrays[label.array], label)
        if not np.isin(values, (0, 1)).all():
            odd = np.unique(values[~np.isin(values, (0, 1))])[:5]
            raise InputError(str(path), f"label {label.describe()} is not binary: found values {odd.tolist()}; "
                                        "expected only 0 and 1 (set dataset_parameters.label)")
        result.label_samples += values.size
        result.label_positives += int(values.sum())
    return result


def _check_shapes(config: Config, plane: str, dirs: list[DirScan]) -> ScanReport:
    expected = config.model.input_shape[:2]
    shapes = Counter()
    for d in dirs:
        shapes.update(d.shapes)
    off = {s: n for s, n in shapes.items() if s != expected}
    src = str(config.path)
    if expected not in shapes:
        found = ", ".join(f"{n} files {h}×{w}" for (h, w), n in shapes.most_common())
        raise InputError(src, f"model_parameters.input_shape: {list(config.model.input_shape)} does not match "
                              f"the data of plane {plane}: {found}")
    skipped = 0
    if off:
        summary = ", ".join(f"{n} files {h}×{w}" for (h, w), n in sorted(off.items()))
        if config.dataset.bad_files == "fail":
            example = next(f.path for d in dirs for f in d.files if f.shape in off)
            raise InputError(src, f"dataset_parameters: mixed image shapes in plane {plane}: {shapes[expected]} "
                                  f"files {expected[0]}×{expected[1]} as input_shape says, but {summary} "
                                  f"(e.g. {example}); set bad_files to \"skip\" to leave them out")
        for d in dirs:
            kept = [f for f in d.files if f.shape == expected]
            d.bad += [(f.path, f"images are {f.shape[0]}×{f.shape[1]}, not input_shape") for f in d.files
                      if f.shape != expected]
            skipped += len(d.files) - len(kept)
            d.files = kept
    return ScanReport(plane, dirs, expected, skipped)


def _check_bad(config: Config, dirs: list[DirScan]) -> None:
    """Under the "fail" policy, the first bad file is the error."""
    bad = [(p, why) for d in dirs for p, why in d.bad]
    if bad and config.dataset.bad_files == "fail":
        path, why = bad[0]
        more = f" (and {len(bad) - 1} more bad files)" if len(bad) > 1 else ""
        raise InputError(str(path), f"{why}{more}; fix or remove it, or set dataset_parameters.bad_files "
                                    f"to \"skip\" in {config.path}")


def _check_labels(config: Config, report: ScanReport) -> None:
    src = str(config.path)
    samples = sum(d.label_samples for d in report.dirs)
    positives = sum(d.label_positives for d in report.dirs)
    label = config.dataset.label.describe()
    if positives in (0, samples):
        value = 1 if positives else 0
        raise InputError(src, f"dataset_parameters.label: {label} is {value} for every one of {samples} samples "
                              f"read; a constant label cannot train a classifier (wrong column?)")
    if config.dataset.balance_data:
        minority = min(positives, samples - positives) / samples
        expected = int(report.samples * minority * 2)
        if expected < 10:
            raise InputError(src, f"dataset_parameters.balance_data: about {expected} samples would remain after "
                                  f"{config.dataset.balance_method}; too few to train")


def format_table(reports: list[ScanReport]) -> list[str]:
    """The compact pre-flight table: directory, plane, files, samples, positives %, bad files."""
    rows = [("directory", "plane", "files", "samples", "positives", "bad files")]
    for report in reports:
        for d in report.dirs:
            frac = d.positive_fraction
            rows.append((str(d.directory), d.plane, str(len(d.files)), f"{d.samples:,}",
                         "-" if frac is None else f"{100 * frac:.1f} %", str(len(d.bad))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in rows]
