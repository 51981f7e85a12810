"""64 workers, one registry, 640 trials: are trials claimed exactly once, and what does coordination cost?

Each worker is a real process running the real trial loop (claim files, history rebuilt from every
worker's records, TPE proposal with the liar, whole-line records); only the trial is a stand-in:
Hartmann-6 after a short sleep. Coordination per trial is everything between two trials of one
worker: appending the last record, claiming the next trial, rebuilding the history, proposing.
It is printed as wall time (which includes waiting for one of this machine's cores while 63 other
processes want them too) and as CPU time of the worker (its own cost), and by how many records
the search held at the time, against the trial time. Then one more worker, alone on the machine,
runs 64 further trials of the same search (records 640 to 703): the cost without contention.

    python bench/parallel_claims.py [--workers 64] [--trials 640] [--sleep-s 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hyperopt  # noqa: E402,F401  imported before the workers fork

from bench.analytic import config_for, new_search, run_workers  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--trials", type=int, default=640)
    parser.add_argument("--sleep-s", type=float, default=0.5, help="the stand-in trial's duration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "registry"
        workers = new_search(root, "900000", args.workers)
        config = config_for("hartmann6", args.trials, startup=10, seed=1)
        started = time.monotonic()
        records = run_workers(config, workers, "hartmann6", args.sleep_s)
        wall = time.monotonic() - started
        counts = Counter(r["trial"] for r in records)
        ran_by = Counter(r["job_id"] for r in records)
        claims = len(os.listdir(root / "jobs" / "900000" / "claims"))
        late = new_search(root, "900001", 1)[0]  # a worker of search 900000 made by hand: its entry says so
        late.submission.write_text(json.dumps({"search_id": "900000", "worker": args.workers}))
        alone = [r for r in run_workers(config_for("hartmann6", args.trials + 64, startup=10, seed=1), [late],
                                        "hartmann6", 0.0) if r["job_id"] == late.job_id]
    print(f"{args.workers} workers, {args.trials} trials of Hartmann-6 + {args.sleep_s:g} s sleep, "
          f"{os.cpu_count()} cores, {wall:.1f} s wall")
    print(f"trials run:  {len(records)} (distinct numbers {len(counts)}, expected {args.trials})")
    print(f"duplicates:  {sum(n - 1 for n in counts.values())}   claim files: {claims}   "
          f"workers that ran trials: {len(ran_by)} (min {min(ran_by.values())}, max {max(ran_by.values())} each)")
    print(f"best value:  {min(r['loss'] for r in records):.4f} (optimum -3.3224)")
    coord = [r["coordination_s"] * 1000 for r in records]
    cpu = [r["coordination_cpu_s"] * 1000 for r in records]
    print(f"coordination per trial, ms: wall median {statistics.median(coord):.1f}, p99 {percentile(coord, 0.99):.1f}; "
          f"CPU median {statistics.median(cpu):.1f}, p99 {percentile(cpu, 0.99):.1f}; "
          f"trial time {args.sleep_s * 1000:.0f} ms")
    solo = [r["coordination_s"] * 1000 for r in alone]
    print(f"one worker alone at {args.trials}-{args.trials + 63} records: wall median {statistics.median(solo):.1f} ms, "
          f"p99 {percentile(solo, 0.99):.1f} ms ({len(alone)} trials)")
    print("by records in the search when the trial was proposed (trial number n sees about n):")
    step = max(1, args.trials // 5)
    for lo in range(0, args.trials, step):
        chunk = [r for r in records if lo <= r["trial"] < lo + step]
        print(f"  {lo:4d}-{lo + step - 1:4d}: wall median {statistics.median(r['coordination_s'] for r in chunk) * 1000:7.1f} ms, "
              f"CPU median {statistics.median(r['coordination_cpu_s'] for r in chunk) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
