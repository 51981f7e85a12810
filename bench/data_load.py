"""Data loading: peak RSS per data byte and throughput, preallocated (ours) vs list + concatenate.

Each method runs in a fresh process; its peak RSS above what the process held before
loading (VmHWM − VmRSS at start) is divided by the bytes of the loaded arrays. The
throughput baseline is a raw np.load of the same files into nothing.

    python bench/data_load.py [--files 50] [--samples 250]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestrator.launch.synthetic import generate

CHILD = r"""
import json, sys, time, glob
import numpy as np

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

method, root, config = sys.argv[1:]
files = sorted(glob.glob(root + "/*/*_planeX.npz"))
from orchestrator.core.config_file import load_config
from jobs import data
cfg = load_config(config)
before = status("VmRSS:")
start = time.perf_counter()
if method == "ours":
    loaded = data.load(cfg, "X")
    nbytes = loaded.images.nbytes + loaded.labels.nbytes + loaded.metadata.nbytes
elif method == "concatenate":
    images, labels, meta = [], [], []
    for f in files:
        with np.load(f) as z:
            images.append(z["images"]); m = z["metadata"]; meta.append(m); labels.append(m[:, 2].astype(np.uint8))
    images, labels, meta = np.concatenate(images), np.concatenate(labels), np.concatenate(meta)
    nbytes = images.nbytes + labels.nbytes + meta.nbytes
else:  # raw np.load, nothing kept
    nbytes = 0
    for f in files:
        with np.load(f) as z:
            nbytes += z["images"].nbytes + z["metadata"].nbytes
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "bytes": nbytes, "peak_extra": status("VmHWM:") - before}))
"""


def run(method: str, root: Path, config: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, method, str(root), str(config)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50, help="files per production")
    parser.add_argument("--samples", type=int, default=250)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, files_per_production=args.files, samples_per_file=args.samples, planes=("X",))
        config = root / "bench.json"
        config.write_text(json.dumps({
            "model_name": "hyperopt_simple_cnn", "plane": "X",
            "data_directories": [str(root / "es"), str(root / "cc")],
            "dataset_parameters": {"train_fraction": 0.7, "val_fraction": 0.15, "test_fraction": 0.15,
                                   "shuffle_data": False, "batch_pattern": "*_planeX.npz"},
            "model_parameters": {"input_shape": [128, 16, 1], "hp_max_evals": 1, "epochs": 1}}))
        results = {m: run(m, root, config) for m in ("raw", "ours", "concatenate")}
    data_mb = results["ours"]["bytes"] / 1e6
    print(f"data: {data_mb:.0f} MB in {2 * args.files} files")
    for method, label in (("ours", "preallocated (ours)"), ("concatenate", "list + concatenate (baseline)")):
        r = results[method]
        print(f"{label:32s} peak RSS / data bytes {r['peak_extra'] / r['bytes']:.2f}   "
              f"{r['bytes'] / 1e6 / r['seconds']:7.0f} MB/s")
    raw = results["raw"]
    print(f"{'raw np.load (baseline)':32s} {'':26s}{raw['bytes'] / 1e6 / raw['seconds']:7.0f} MB/s")


if __name__ == "__main__":
    main()
