"""Wall time of one search with 1 worker × 2 threads against 2 workers × 1 thread, on this machine.

Real Keras on the demo data (`orch demo-data`: 10 files per production, ~250 samples each) with the
demo config at 8 trials, through the local executor, which pins each of several workers to its share
of the cores (TensorFlow then uses 1 thread each on this 2-core machine). Prints the wall time of
both from submit to the search's end, the trials each worker ran, and the ratio.

    python bench/parallel_speedup.py [--trials 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_search import demo_config, run_local  # noqa: E402
from orchestrator.core.attempts import members, search_records  # noqa: E402
from orchestrator.core.records import read_json
from orchestrator.core.registry import read_json_lines  # noqa: E402
from orchestrator.launch.synthetic import generate  # noqa: E402


def run(tmp: Path, data: Path, trials: int, workers: int) -> tuple[float, float]:
    """Wall time and best validation loss of one search."""
    config = demo_config(data, hp_max_evals=trials, pruning={"method": "none"})  # the same trials in both
    config["resources"]["workers"] = workers
    search, wall = run_local(config, tmp, f"speedup{workers}")
    per_worker = [sum(1 for _ in read_json_lines(m.trials)) for m in members(search)]
    threads = {read_json(m.run)["threads"] for m in members(search)}
    print(f"  {workers} worker(s) × {threads.pop()} thread(s): {wall:6.1f} s, trials per worker {per_worker}",
          flush=True)
    return wall, min(r["loss"] for r in search_records(search) if r["status"] == "ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        generate(tmp / "data", files_per_production=10, samples_per_file=250, seed=0)
        print(f"demo search, {args.trials} trials, real Keras:")
        serial, serial_best = run(tmp, tmp / "data", args.trials, 1)
        parallel, parallel_best = run(tmp, tmp / "data", args.trials, 2)
    print(f"speed-up (1×2 wall / 2×1 wall): {serial / parallel:.2f}; best val_loss {serial_best:.4f} (1 worker) "
          f"vs {parallel_best:.4f} (2 workers)")


if __name__ == "__main__":
    main()
