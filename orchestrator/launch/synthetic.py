"""Synthetic per-plane NPZ data in the users' layout, for the demo and the tests.

Two productions (``es`` and ``cc``), one file per "input ROOT file" per plane:
``<dir>/<production>/prodmarley_<production>_<k>_plane<P>.npz`` holding
``images`` (N, H, W) float32 and ``metadata`` (N, 13) float32 in the 13-column
layout of CONTEXT.md ([2] is_main_track, [12] plane id). Main tracks (~14 %)
are long ionization tracks; backgrounds are short blips, with overlap: some
backgrounds carry a longer segment and some main tracks are short, and every
image has extra blips. Like the real zero-suppressed data, pixels away from
charge are exactly 0, so files compress well. Everything is seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from orchestrator.core.config import PLANES

PRODUCTIONS = ("es", "cc")
META_COLUMNS = 13


def file_path(root: Path, production: str, index: int, plane: str) -> Path:
    """Where file ``index`` of ``production`` for ``plane`` lives under ``root``."""
    return root / production / f"prodmarley_{production}_{index:04d}_plane{plane}.npz"


def make_samples(rng: np.random.Generator, n: int, shape: tuple[int, int], plane: str,
                 production: str, main_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images and their 13-column metadata for one file."""
    height, width = shape
    is_main = rng.random(n) < main_fraction
    # main tracks: mostly long; backgrounds: mostly short, a tail of longer segments (the overlap)
    length = np.where(is_main, rng.gamma(4.0, height / 14, n), rng.gamma(1.5, height / 22, n))
    length = np.clip(length, 2, height)
    start = rng.uniform(0, height - np.minimum(length, height - 1))
    slope = rng.normal(0, 0.08, n)
    col0 = rng.uniform(2, width - 2, n)
    charge = rng.gamma(3.0, 0.5, n)[:, None, None]

    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    centre = col0[:, None, None] + slope[:, None, None] * (rows - start[:, None, None])
    on_track = (rows >= start[:, None, None]) & (rows < (start + length)[:, None, None])
    images = charge * np.exp(-0.5 * ((cols - centre) / 0.7) ** 2) * on_track
    for _ in range(2):  # extra blips everywhere, so a blob alone decides nothing
        r = rng.integers(0, height, n)[:, None, None]
        c = rng.integers(0, width, n)[:, None, None]
        amp = (rng.random(n) < 0.6)[:, None, None] * rng.gamma(2.0, 0.6, n)[:, None, None]
        images = images + amp * np.exp(-0.5 * (((rows - r) / 2.0) ** 2 + ((cols - c) / 0.8) ** 2))
    images = images * (1 + rng.normal(0, 0.15, images.shape))
    images = np.where(images > 0.05, images, 0).astype(np.float32)

    meta = np.zeros((n, META_COLUMNS), dtype=np.float32)
    meta[:, 0] = np.arange(n)
    meta[:, 1] = 1.0 if production == "cc" else (is_main | (rng.random(n) < 0.3))  # is_marley
    meta[:, 2] = is_main
    meta[:, 3] = production == "es"
    meta[:, 4:7] = rng.uniform(-300, 300, (n, 3))
    meta[:, 7:10] = rng.normal(0, 10, (n, 3))
    meta[:, 10] = images.sum(axis=(1, 2)) * 0.2  # cluster energy, MeV
    meta[:, 11] = meta[:, 10] * rng.uniform(1.0, 1.4, n)
    meta[:, 12] = PLANES.index(plane)
    return images, meta


def generate(root: str | Path, files_per_production: int = 4, samples_per_file: int = 200,
             shape: tuple[int, int] = (128, 16), planes: tuple[str, ...] = PLANES, seed: int = 0,
             main_fraction: float = 0.14, compress: bool = True) -> list[Path]:
    """Write the synthetic data set under ``root``; return the files written."""
    root = Path(root)
    written = []
    for p_index, production in enumerate(PRODUCTIONS):
        (root / production).mkdir(parents=True, exist_ok=True)
        for k in range(files_per_production):
            for plane in planes:
                rng = np.random.default_rng([seed, p_index, k, PLANES.index(plane)])
                n = int(rng.integers(samples_per_file * 3 // 4, samples_per_file * 5 // 4 + 1))
                images, meta = make_samples(rng, n, shape, plane, production, main_fraction)
                path = file_path(root, production, k, plane)
                (np.savez_compressed if compress else np.savez)(path, images=images, metadata=meta)
                written.append(path)
    return written
