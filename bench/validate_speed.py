"""Wall time of `orch validate` on the v4 config over 5,000 generated NPZ files, and of `orch --help`.

Baselines in the same run: a bare `python -c pass` (interpreter start) and reading every
file fully with np.load, which is what a scan that loads the data would cost. The pre-flight
itself (``scan``, in this process) is timed with and without its pixel check (the images of
the sampled files read and checked for NaN/±Inf), so the check's cost is a printed figure.

    python bench/validate_speed.py [--files 5000] [--samples 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from orchestrator.core.config_file import load_config
from orchestrator.launch.scan import scan
from orchestrator.launch.synthetic import generate

REPO = Path(__file__).resolve().parent.parent


def wall(argv: list[str], env: dict[str, str], repeat: int = 3) -> float:
    """Best of ``repeat`` wall times of a command (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def preflight(config_path: str, repeat: int = 3) -> tuple[float, float]:
    """Best of ``repeat`` wall times of the pre-flight of plane X without and with the pixel check
    (seconds), taken in turn so that both see the same state of the page cache."""
    config = load_config(Path(config_path))
    best = {False: float("inf"), True: float("inf")}
    for _ in range(repeat):
        for pixels in best:
            start = time.perf_counter()
            scan(config, "X", pixels=pixels)
            best[pixels] = min(best[pixels], time.perf_counter() - start)
    return best[False], best[True]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=60, help="mean samples per file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        files = generate(tmp, files_per_production=args.files // 2, samples_per_file=args.samples, planes=("X",))
        print(f"generated {len(files)} files ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB) "
              f"in {time.perf_counter() - start:.1f} s")
        env = {**os.environ, "ORCH_DATA_ROOT": tmp}
        orch = [sys.executable, "-m", "orchestrator", "--registry", os.path.join(tmp, "registry")]
        v4 = str(REPO / "json" / "mt_identifier" / "production_training_prod_main_v4.json")
        results = {
            "python -c pass (baseline)": wall([sys.executable, "-c", "pass"], env),
            "orch --help": wall([*orch, "--help"], env),
            f"orch validate v4 over {len(files)} files": wall([*orch, "validate", v4], env),
        }
        os.environ["ORCH_DATA_ROOT"] = tmp
        without, with_pixels = preflight(v4)
        results["pre-flight, no pixel check (baseline)"] = without
        results["pre-flight with the pixel check"] = with_pixels
        start = time.perf_counter()
        for path in files:
            with np.load(path) as npz:
                npz["images"], npz["metadata"]
        results["np.load of every file, fully (baseline)"] = time.perf_counter() - start
    for what, seconds in results.items():
        print(f"{what:48s} {seconds:8.3f} s")
    print(f"pixel check: pre-flight of plane X {without:.3f} s → {with_pixels:.3f} s, "
          f"{with_pixels - without:+.3f} s ({100 * (with_pixels - without) / without:+.0f} %)")


if __name__ == "__main__":
    main()
