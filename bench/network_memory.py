"""What a trial's network costs in memory: real Keras trial processes, one network each, on a few
hundred synthetic 128×16 samples (so the data term is a few MB), and the memory model's
coefficients fitted to their peak RSS.

Each network is one job through the local executor (1 trial, 1 epoch, the network's point as the
only one of its space); the trial's peak is its process's ``ru_maxrss`` (``trials.jsonl``
peak_rss_mb). The fit is least squares of

    trial peak − mapped data = base + param_copies × parameter bytes + activation_copies × batch × activation bytes

with the counts of ``orchestrator.launch.memory.Network.counts`` (float32). The old estimate
(data × 1.05 + 1.0, in GB of 10⁹ bytes, as it was printed and requested in SLURM's G)
is printed beside it.

    python bench/network_memory.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from orchestrator.core.records import read_json, read_json_lines
from orchestrator.core.registry import JobPaths
from orchestrator.launch.memory import FLOAT32, GIB, Network
from orchestrator.launch.plan import plan
from orchestrator.launch.submit import submit
from orchestrator.launch.synthetic import generate
from orchestrator.scheduler.backend import wait
from orchestrator.scheduler.local_backend import Local

SHAPE = (128, 16, 1)
NETWORKS = (  # conv layers, filters, kernel, dense layers, units, batch
    Network(1, 4, 3, 0, 1, 32),  # almost nothing: the framework's base
    Network(2, 8, 3, 2, 1024, 32),  # parameters: 3.1 M in dense layers, few activations
    Network(2, 8, 3, 3, 2048, 32),  # parameters: 10.5 M
    Network(2, 64, 3, 1, 64, 256),  # activations: 204 k per sample at batch 256
    Network(4, 256, 1, 0, 1, 64),  # activations: 871 k per sample at batch 64
    Network(4, 256, 1, 0, 1, 256),  # ... at batch 256, few parameters (kernel 1)
    Network(3, 128, 3, 1, 64, 256),  # activations and parameters, kernel 3
    Network(4, 256, 5, 3, 256, 128),  # v2's deepest network
    Network(4, 256, 5, 3, 256, 256),  # v4's deepest network
    Network(3, 128, 5, 3, 256, 128),  # v1's and v3's largest network
    Network(2, 256, 5, 3, 256, 128),  # v2's largest network: 10.2 M parameters, 820 k activations
    Network(2, 256, 5, 3, 256, 256),  # v4's largest network
)


def run_network(root: Path, data: Path, index: int, net: Network) -> tuple[float, float, int]:
    """(trial peak GiB, job peak GiB, data bytes) of one job training ``net`` for one epoch."""
    config = root / "repo" / f"net{index}.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    space = {"n_conv_layers": [net.n_conv_layers], "n_filters": [net.n_filters], "kernel_size": [net.kernel_size],
             "n_dense_layers": [net.n_dense_layers], "n_dense_units": [net.n_dense_units],
             "batch_size": [net.batch_size]}
    config.write_text(json.dumps({
        "model_name": "hyperopt_simple_cnn", "plane": "X",
        "data_directories": [str(data / "es"), str(data / "cc")],
        "dataset_parameters": {"train_fraction": 0.7, "val_fraction": 0.15, "test_fraction": 0.15,
                               "batch_pattern": "*_planeX.npz"},
        "model_parameters": {"input_shape": list(SHAPE), "hp_max_evals": 1, "epochs": 1, "batch_size": 32,
                             "space_options": space},
        "resources": {"cpus_per_task": 2}}))
    job_ids = submit(plan(config, root / "registry"), Local())
    paths = JobPaths(root / "registry", job_ids[0])
    wait(paths)
    (trial,) = list(read_json_lines(paths.trials))
    if trial["status"] != "ok":
        raise SystemExit(f"{net}: trial {trial['status']}: {trial.get('reason')}")
    return (trial["peak_rss_mb"] / 1024, read_json(paths.local_state)["max_rss_mb"] / 1024,
            read_json(paths.data_record)["data_bytes"])


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, files_per_production=2, samples_per_file=150, planes=("X",))
        for i, net in enumerate(NETWORKS):
            rows.append((net, *run_network(Path(tmp), data, i, net)))
            print(f"ran {net}: trial peak {rows[-1][1]:.3f} GiB", flush=True)
    terms = np.array([[1.0, net.counts(SHAPE)[0] * FLOAT32 / GIB, net.batch_size * net.counts(SHAPE)[1] * FLOAT32 / GIB]
                      for net, *_ in rows])
    mapped = np.array([0.85 * data_bytes / GIB for *_, data_bytes in rows])  # train + val splits
    trial = np.array([peak for _, peak, _, _ in rows])
    (base, param_copies, activation_copies), *_ = np.linalg.lstsq(terms, trial - mapped, rcond=None)
    fitted = mapped + terms @ (base, param_copies, activation_copies)
    print(f"\n{'L':>2s} {'F':>4s} {'k':>2s} {'D':>2s} {'U':>5s} {'B':>4s} {'params':>10s} {'act/sample':>10s} "
          f"{'param GiB':>9s} {'act GiB':>8s} {'old est.':>8s} {'fit':>6s} {'trial peak':>10s} {'job peak':>8s} "
          f"{'fit/trial':>9s}")
    for (net, peak, job, data_bytes), fit, (_, p_gib, a_gib) in zip(rows, fitted, terms):
        params, activations = net.counts(SHAPE)
        old = data_bytes * 1.05 / 1e9 + 1.0  # as the old code printed it (and asked for it, in G)
        print(f"{net.n_conv_layers:2d} {net.n_filters:4d} {net.kernel_size:2d} {net.n_dense_layers:2d} "
              f"{net.n_dense_units:5d} {net.batch_size:4d} {params:10d} {activations:10d} {p_gib:9.3f} {a_gib:8.3f} "
              f"{old:8.2f} {fit:6.2f} {peak:10.2f} {job:8.2f} {fit / peak:9.2f}")
    print(f"\nfit (GiB): base {base:.3f}, param_copies {param_copies:.2f}, activation_copies {activation_copies:.2f}")


if __name__ == "__main__":
    main()
