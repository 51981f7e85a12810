"""Whole jobs of every shipped config: the submit-time memory estimate against the measured peak.

For each config (``json/mt_identifier/*.json``, ``json/demo/demo.json``) its space's smallest network
(the lowest value of every size key) and its largest (``orchestrator.launch.memory.largest_network``) are each run
as one job through the local executor (1 trial, 1 epoch, that network as the space's only point) on
synthetic data of the config's input shape (``orchestrator.launch.synthetic``; the production configs read
it through ``ORCH_DATA_ROOT``), at two data sizes. The smallest network runs on large data, which is
where the data term shows; the largest on small data, so that its epoch fits this bench on 2 cores
(its memory is the network's, not the data's). Two measured peaks, in GiB as the estimate: of the
largest process (``local_state.json`` max_rss_mb, what the local executor records), and of all the
job's processes at once (the job process stays beside each trial process), sampled from /proc every
20 ms: what a memory cgroup and SLURM's per-task MaxRSS add up, and what the estimate predicts.
The old estimate (data × 1.05 + 1.0, in GB of 10⁹ bytes, as it was printed and
requested) stands beside the new one.

    python bench/job_memory.py [--small-net-samples 10000,80000] [--large-net-samples 1000,3000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.core.config_file import load_config
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths
from orchestrator.launch.memory import GIB, SIZE_KEYS, largest_network
from orchestrator.launch.plan import plan
from orchestrator.launch.submit import submit
from orchestrator.launch.synthetic import generate
from orchestrator.scheduler.backend import wait
from orchestrator.scheduler.local_backend import Local

REPO = Path(__file__).resolve().parent.parent
CONFIGS = (*sorted((REPO / "json" / "mt_identifier").glob("*.json")), REPO / "json" / "demo" / "demo.json")
SAMPLES_PER_FILE = 250


def pinned(source: Path, end: int, name: str, data: Path) -> dict[str, Any]:
    """``source`` with the size keys of its space pinned to its smallest network (``end`` 0: the
    lowest value of each) or its largest (1: ``largest_network``'s depth, the highest value of the
    others), 1 trial of 1 epoch, reading ``data`` (directly, or through ``ORCH_DATA_ROOT``)."""
    raw = json.loads(source.read_text())
    config = load_config(source, resolve_paths=False)
    options = raw["model_parameters"]["space_options"]
    for key in SIZE_KEYS:
        if key in options:
            values = config.model.space.values(key)
            options[key] = [min(values) if end == 0 else max(values)]
    if end == 1 and "n_conv_layers" in options:
        options["n_conv_layers"] = [largest_network(config).n_conv_layers]
    raw["model_parameters"].update(hp_max_evals=1, epochs=1)
    raw.update(name=name, parent=None, output_folder=None)
    if not all(d.startswith("${ORCH_DATA_ROOT}/") for d in raw["data_directories"]):  # the demo's, relative
        raw["data_directories"] = [str(data / "es"), str(data / "cc")]
    raw.setdefault("resources", {})["cpus_per_task"] = 2
    return raw


def tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and its descendants now (0 once it is gone)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(rss[1]) * 1024 if rss else 0
        stack += map(int, children)
    return total


def sample_tree(paths: JobPaths, peak: list[int]) -> None:
    """Keep in ``peak[0]`` the largest sum of the job's processes' resident sets, sampled every 20 ms
    until it ended (what SLURM's per-task MaxRSS and a memory cgroup add up)."""
    while "exit_code" not in (read_json(paths.local_state) if paths.local_state.exists() else {}):
        pid = (read_json(paths.local_state) if paths.local_state.exists() else {}).get("pid")
        if pid:
            peak[0] = max(peak[0], tree_rss(pid))
        time.sleep(0.02)


def run_job(root: Path, config: dict[str, Any]) -> tuple[dict[str, Any], float, float, float]:
    """(the submitted estimate, measured peak GiB: of one process and of all at once, wall seconds)
    of one job of ``config``."""
    path = root / "repo" / f"{config['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    started = time.monotonic()
    job_ids = submit(plan(path, root / "registry"), Local())
    paths = JobPaths(root / "registry", job_ids[0])
    peak = [0]
    sampler = threading.Thread(target=sample_tree, args=(paths, peak))
    sampler.start()
    wait(paths)
    sampler.join()
    if read_json(paths.run)["status"] != "completed":
        raise SystemExit(f"{config['name']}: the job did not complete; see {paths.log}")
    return (read_json(paths.submission)["estimate"], read_json(paths.local_state)["max_rss_mb"] / 1024,
            peak[0] / GIB, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small-net-samples", default="10000,80000", help="data sizes for the smallest networks")
    parser.add_argument("--large-net-samples", default="1000,3000", help="data sizes for the largest networks")
    args = parser.parse_args()
    sizes = ([int(n) for n in args.small_net_samples.split(",")], [int(n) for n in args.large_net_samples.split(",")])
    header = (f"{'config':<33s} {'network':<26s} {'samples':>7s} {'data GiB':>8s} {'old est.':>8s} {'new est.':>8s} "
              f"{'1 proc':>6s} {'all':>6s} {'old/all':>7s} {'new/all':>7s} {'new/1 proc':>10s} {'goal':>4s} "
              f"{'wall s':>6s}")
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        datasets: dict[tuple[tuple[int, int], int], Path] = {}
        for source in CONFIGS:
            shape = load_config(source, resolve_paths=False).model.input_shape[:2]
            for end, label in enumerate(("smallest", "largest")):
                for samples in sizes[end]:
                    data = datasets.get((shape, samples))
                    if data is None:
                        data = datasets[shape, samples] = root / f"data-{shape[0]}x{shape[1]}-{samples}"
                        generate(data, files_per_production=samples // SAMPLES_PER_FILE // 2,
                                 samples_per_file=SAMPLES_PER_FILE, shape=shape, planes=("X",))
                    os.environ["ORCH_DATA_ROOT"] = str(data)
                    config = pinned(source, end, f"{source.stem}-{label}-{samples}", data)
                    est, one, every, wall = run_job(root, config)
                    net = est["network"]
                    old = est["data_gb"] * GIB / 1e9 * 1.05 + 1.0
                    ratio = est["peak_gb"] / every
                    print(f"{source.stem:<33s} {label[:5]} {net['n_conv_layers']}×{net['n_filters']:<3d} "
                          f"k{net['kernel_size']} {net['n_dense_layers']}×{net['n_dense_units']:<3d} "
                          f"b{net['batch_size']:<3d} {est['samples_loaded']:7d} {est['data_gb']:8.3f} {old:8.2f} "
                          f"{est['peak_gb']:8.2f} {one:6.2f} {every:6.2f} {old / every:7.2f} {ratio:7.2f} "
                          f"{est['peak_gb'] / one:10.2f} {'ok' if 0.9 <= ratio <= 1.2 else 'MISS':>4s} {wall:6.0f}",
                          flush=True)
    print("\n1 proc: the largest process (local_state max_rss_mb); all: the job's processes at once, sampled "
          "every 20 ms.\ngoal: the new estimate within ±20 % of 'all', never more than 10 % below it "
          "(0.9 ≤ new/all ≤ 1.2)")


if __name__ == "__main__":
    main()
