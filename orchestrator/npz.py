"""Reading NPZ files without loading them: array headers from inside the zip.

An NPZ is a zip of ``.npy`` members. ``read_headers`` opens each member and
reads only its header (magic, shape, dtype), so even compressed members are
barely decompressed. It also checks that each member's size in the zip's
directory matches its header, which catches truncated and inconsistent files.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
