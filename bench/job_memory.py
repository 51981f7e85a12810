"""The whole job on two data sizes: the submit-time memory estimate against the measured peak,
and the job's wall time split into load / trials / final.

Each job runs through the local executor (1 trial, 2 epochs); its measured peak is the
largest resident set of any of its processes (``local_state.json`` max_rss_mb, the local
counterpart of sacct's MaxRSS).

    python bench/job_memory.py [--sizes 40,160] [--samples 250]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from orchestrator.records import read_json
from orchestrator.registry import JobPaths
from orchestrator.submit import plan, submit
from orchestrator.synthetic import generate


def run_job(root: Path, files: int, samples: int) -> tuple[dict, dict, dict, dict]:
    data = root / f"data{files}"
    generate(data, files_per_production=files // 2, samples_per_file=samples, planes=("X",))
    config = root / "repo" / f"mem{files}.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({
        "model_name": "hyperopt_simple_cnn", "plane": "X",
        "data_directories": [str(data / "es"), str(data / "cc")],
        "dataset_parameters": {"train_fraction": 0.7, "val_fraction": 0.15, "test_fraction": 0.15,
                               "batch_pattern": "*_planeX.npz"},
        "model_parameters": {"input_shape": [128, 16, 1], "hp_max_evals": 1, "epochs": 2, "batch_size": 128,
                             "space_options": {"n_filters": [32], "n_dense_units": [64]}}}))
    job_ids, runner = submit(plan(config, root / "registry"), use_local=True)
    runner.wait()
    paths = JobPaths(root / "registry", job_ids[0])
    return (read_json(paths.submission), read_json(paths.local_state), read_json(paths.result),
            read_json(paths.data_record))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="40,160", help="numbers of files (half ES, half CC)")
    parser.add_argument("--samples", type=int, default=250)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for files in map(int, args.sizes.split(",")):
            rows.append(run_job(Path(tmp), files, args.samples))
    print(f"{'samples':>8s} {'data MB':>8s} {'predicted peak':>15s} {'request':>8s} {'measured peak':>14s} "
          f"{'measured/predicted':>19s}   load / trials / final (s)")
    for submission, state, result, data in rows:
        est = submission["estimate"]
        measured_gb = state["max_rss_mb"] / 1024
        t = result["timings"]
        print(f"{est['samples_loaded']:8d} {data['data_bytes'] / 1e6:8.0f} {est['peak_gb']:12.2f} GB "
              f"{est['request_gb']:5d} GB {measured_gb:11.2f} GB {measured_gb / est['peak_gb']:19.2f}   "
              f"{t['load_s']:.1f} / {t['trials_s']:.1f} / {t['final_s']:.1f}")


if __name__ == "__main__":
    main()
