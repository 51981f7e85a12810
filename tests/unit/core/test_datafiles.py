"""Reading NPZ headers from inside the zip, on real files written by numpy."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from orchestrator.core.datafiles import BadFile, read_array, read_headers


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_headers_of_plain_and_compressed_files(tmp_path: Path, save) -> None:
    path = tmp_path / "a_planeX.npz"
    save(path, images=np.ones((7, 128, 16), dtype=np.float32), metadata=np.zeros((7, 14)))
    headers = read_headers(path)
    assert headers["images"].shape == (7, 128, 16) and headers["images"].dtype == np.float32
    assert headers["metadata"].shape == (7, 14) and headers["metadata"].nbytes == 7 * 14 * 8
    assert read_array(path, "metadata").shape == (7, 14)


def test_member_shorter_than_its_header_is_caught(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, images=np.ones((5, 4, 4), dtype=np.float32))
    with zipfile.ZipFile(good) as src:
        raw = src.read("images.npy")
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as dst:
        dst.writestr("images.npy", raw[:-16])  # a valid zip whose array lost its tail
    with pytest.raises(BadFile, match="truncated or inconsistent"):
        read_headers(bad)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(BadFile, match="would need pickle"):
        read_headers(path)


def test_headers_are_read_without_decompressing_the_arrays(tmp_path: Path) -> None:
    """A 100 MB array's header is read from a compressed member in far less than its size."""
    path = tmp_path / "big.npz"
    np.savez_compressed(path, images=np.zeros((1000, 128, 200), dtype=np.float32))
    read = 0
    original = zipfile.ZipExtFile.read

    def counting(self, n=-1):  # count what the reader asks for
        nonlocal read
        data = original(self, n)
        read += len(data)
        return data

    zipfile.ZipExtFile.read = counting
    try:
        read_headers(path)
    finally:
        zipfile.ZipExtFile.read = original
    assert read < 4096
