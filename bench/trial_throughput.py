"""Trial throughput: a real trial process (memory-mapped cache, ours) vs a plain model.fit on
the same arrays held in RAM, same model, seed, batch size and epochs. Target ≥ 0.9.

Both sides are timed the same way: the sum of epoch times (fit only) and the wall time of
the whole process (interpreter, TensorFlow import, data, fit). They run alternately
``--repeat`` times and the medians are compared (single runs vary ±10 % on 2 cores).

    python bench/trial_throughput.py [--files 20] [--samples 250] [--epochs 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobs import data
from orchestrator.core.config_file import load_config
from orchestrator.core.files import write_json_atomic
from orchestrator.core.registry import JobPaths
from orchestrator.launch.synthetic import generate

POINT = {"n_conv_layers": 2, "n_filters": 32, "kernel_size": 3, "pooling": "max", "n_dense_layers": 2,
         "n_dense_units": 64, "dropout_rate": 0.2, "learning_rate": 1e-3, "decay_rate": 0.98, "batch_size": 128}

BASELINE = r"""
import json, sys, time, numpy as np, keras
from jobs.model import build_model
from jobs.trial import epoch_logger, setup_threads
from orchestrator.core import jobenv
cache, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
point = json.loads(sys.argv[4])
setup_threads(jobenv.trial_threads())
keras.utils.set_random_seed(seed)
x = np.load(cache + "/train_images.npy")[..., None]; y = np.load(cache + "/train_labels.npy")
xv = np.load(cache + "/val_images.npy")[..., None]; yv = np.load(cache + "/val_labels.npy")
model = build_model(point, (128, 16, 1), -(-len(y) // point["batch_size"]))
model.fit(x, y, batch_size=point["batch_size"], epochs=epochs, validation_data=(xv, yv), verbose=0,
          callbacks=[epoch_logger(0, epochs)])
"""


def epoch_seconds(output: str) -> float:
    return sum(float(s) for s in re.findall(r"epoch \d+/\d+: .* \(([\d.]+) s\)", output))


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--samples", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "data", files_per_production=args.files, samples_per_file=args.samples, planes=("X",))
        paths = JobPaths(root / "registry", "1")
        paths.dir.mkdir(parents=True)
        paths.config.write_text(json.dumps({
            "model_name": "hyperopt_simple_cnn", "plane": "X",
            "data_directories": [str(root / "data" / "es"), str(root / "data" / "cc")],
            "dataset_parameters": {"train_fraction": 0.7, "val_fraction": 0.15, "test_fraction": 0.15,
                                   "batch_pattern": "*_planeX.npz"},
            "model_parameters": {"input_shape": [128, 16, 1], "hp_max_evals": 1, "epochs": args.epochs,
                                 "batch_size": 128}}))
        record = data.prepare(load_config(paths.config), "X", paths.cache, "bench")
        train = record["splits"]["train"]["samples"]
        paths.trial_dir(0).mkdir(parents=True)
        write_json_atomic(paths.trial_dir(0) / "request.json", {"trial": 0, "point": POINT, "seed": 1})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        ours, base = [], []
        for _ in range(args.repeat):
            wall, out = timed([sys.executable, "-m", "jobs.trial", "trial", str(paths.dir), "0"], env)
            ours.append((epoch_seconds(out), wall))
            wall, out = timed([sys.executable, "-c", BASELINE, str(paths.cache), str(args.epochs), "1",
                               json.dumps(POINT)], env)
            base.append((epoch_seconds(out), wall))
    samples = train * args.epochs
    ours_fit, ours_wall = (statistics.median(x) for x in zip(*ours))
    base_fit, base_wall = (statistics.median(x) for x in zip(*base))
    print(f"{train} training samples × {args.epochs} epochs, batch {POINT['batch_size']}, "
          f"{len(os.sched_getaffinity(0))} cores, median of {args.repeat} alternating runs")
    print(f"{'':34s}{'fit only':>14s}{'whole process':>16s}")
    print(f"{'trial process, mmap cache (ours)':34s}{samples / ours_fit:9.0f} s⁻¹{samples / ours_wall:11.0f} s⁻¹")
    print(f"{'plain model.fit, RAM (baseline)':34s}{samples / base_fit:9.0f} s⁻¹{samples / base_wall:11.0f} s⁻¹")
    print(f"{'ratio ours / baseline':34s}{base_fit / ours_fit:14.2f}{base_wall / ours_wall:16.2f}")


if __name__ == "__main__":
    main()
