"""The data files: which files a config reads (``find_files``), what a usable one is, where its label is;
NPZ files read without loading them (array headers from inside the zip).

An NPZ is a zip of ``.npy`` members. ``read_headers`` opens each member and
reads only its header (magic, shape, dtype), so even compressed members are
barely decompressed. It also checks that each member's size in the zip's
directory matches its header, which catches truncated and inconsistent files.
``find_files``, ``check_headers`` (its arrays), ``non_finite`` (its pixels) and ``label_column``
are the one rule of which files are read and which are usable, applied by both the pre-flight
(``orchestrator.launch.scan``) and the job (``jobs.data``).
"""

from __future__ import annotations

import fnmatch
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.core.config import LabelSpec


class BadFile(Exception):
    """A data file that cannot be used; the message says why, in a few words."""


@dataclass(frozen=True)
class ArrayHeader:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def read_headers(path: Path) -> dict[str, ArrayHeader]:
    """The headers of every array in the NPZ at ``path``; ``BadFile`` if it is not a sound NPZ."""
    try:
        if path.stat().st_size == 0:
            raise BadFile("empty file (0 bytes)")
        with zipfile.ZipFile(path) as archive:
            return {h.name: h for h in (_member_header(archive, info) for info in archive.infolist()
                                        if info.filename.endswith(".npy"))}
    except zipfile.BadZipFile:
        raise BadFile("not a readable NPZ: truncated or corrupt zip") from None
    except (OSError, EOFError, ValueError) as exc:
        raise BadFile(f"unreadable: {exc}") from None


def check_headers(headers: dict[str, ArrayHeader], label_array: str,
                  label_column: int | None) -> tuple[int, tuple[int, int], int | None]:
    """Sample count, image shape (height, width) and metadata column count (None without a 2-D
    ``metadata``) of a data file: ``images`` (N, height, width) and a label array of N rows holding
    ``label_column``; ``BadFile`` if it is not such a file."""
    for needed in ("images", label_array):
        if needed not in headers:
            raise BadFile(f"no {needed!r} array (has: {', '.join(sorted(headers)) or 'none'})")
    images = headers["images"]
    if len(images.shape) != 3:
        raise BadFile(f"images has shape {images.shape}; expected (N, height, width)")
    n = images.shape[0]
    lab = headers[label_array]
    if lab.shape[:1] != (n,):
        raise BadFile(f"{label_array} has {lab.shape[:1]} rows but images has {n}")
    if label_column is not None and (len(lab.shape) != 2 or label_column >= lab.shape[1]):
        raise BadFile(f"{label_array} has shape {lab.shape}; label column {label_column} is out of range")
    meta = headers.get("metadata")
    return n, (images.shape[1], images.shape[2]), (meta.shape[1] if meta and len(meta.shape) == 2 else None)


@dataclass(frozen=True)
class NonFinite:
    """The samples of an images array that hold NaN or ±Inf pixels."""

    mask: np.ndarray  # (N,) bool: True for a sample holding at least one non-finite pixel
    pixels: int  # the non-finite pixels, in all samples

    @property
    def samples(self) -> int:
        """How many samples hold a non-finite pixel."""
        return int(np.count_nonzero(self.mask))

    def describe(self) -> str:
        """The problem in a few words: how many pixels, in how many of the samples."""
        return f"{self.pixels} non-finite pixels (NaN or ±Inf) in {self.samples} of {len(self.mask)} samples"


def non_finite(images: np.ndarray) -> NonFinite:
    """Which samples of ``images`` (N, ...) hold a NaN or ±Inf pixel, and how many such pixels there are."""
    finite = np.isfinite(images)
    mask = ~finite.all(axis=tuple(range(1, images.ndim)))
    return NonFinite(mask, int(finite.size - np.count_nonzero(finite)) if mask.any() else 0)


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> ArrayHeader:
    name = info.filename[: -len(".npy")]
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        header_len = member.tell()
    header = ArrayHeader(name, tuple(shape), np.dtype(dtype))
    if dtype.hasobject:
        raise BadFile(f"array {name!r} holds Python objects (would need pickle); refusing")
    if info.file_size != header_len + header.nbytes:
        raise BadFile(f"array {name!r} is {info.file_size} bytes but its header says "
                      f"{header_len + header.nbytes}: truncated or inconsistent")
    return header


def read_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load the named arrays of an NPZ, opening it once and decompressing only those members
    (no pickles)."""
    arrays: dict[str, np.ndarray] = {}
    name = names[0]
    try:
        with zipfile.ZipFile(path) as archive:
            for name in names:
                with archive.open(f"{name}.npy") as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as exc:
        raise BadFile(f"cannot read array {name!r}: {exc}") from None
    return arrays


def read_array(path: Path, name: str) -> np.ndarray:
    """Load one array of an NPZ."""
    return read_arrays(path, (name,))[name]


def find_files(directory: Path, pattern: str, plane: str) -> list[Path]:
    """Files matching ``pattern`` in ``directory`` and in its ``<plane>/`` subfolder, sorted."""
    found = []
    for folder in (directory, directory / plane):
        try:
            with os.scandir(folder) as entries:
                found += [Path(e.path) for e in entries if fnmatch.fnmatchcase(e.name, pattern) and e.is_file()]
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(found)


def label_column(array: np.ndarray, label: LabelSpec) -> np.ndarray:
    """The labels within the label array (its column, for a 2-D array)."""
    return array if label.column is None else array[:, label.column]
