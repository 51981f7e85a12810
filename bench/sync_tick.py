"""One `orch sync` tick with N tracked jobs on the real SLURM: scheduler calls and wall time,
against the baseline of one sacct per job (what per-job polling loops do). Target: ≤ 2 calls.

The jobs are real: N held `sbatch --wrap true` submissions (PENDING while measured, cancelled
after), each with a registry entry as `orch submit` writes it. Needs scripts/local-slurm.

    python bench/sync_tick.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from orchestrator import slurm
from orchestrator.registry import create_entry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    submitted_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    ids = [slurm.parse_sbatch(subprocess.run(["sbatch", "--parsable", "--hold", "--wrap", "true"], check=True,
                                             capture_output=True, text=True).stdout) for _ in range(args.jobs)]
    print(f"submitted {len(ids)} held jobs in {time.perf_counter() - start:.1f} s")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for job_id in ids:
                create_entry(root, job_id, {"submission.json": json.dumps({
                    "scheduler": "slurm", "submitted_at": submitted_at, "request": {"mem_gb": 2}, "attempt": 1,
                    "config": {"label": "bench_v1", "name": "bench"}, "estimate": {"peak_gb": 1}})})
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "orchestrator", "--registry", tmp, "sync", "--json"],
                                 check=True, capture_output=True, text=True).stdout
            tick_s = time.perf_counter() - start
            report = json.loads(out)
            start = time.perf_counter()
            second = json.loads(subprocess.run([sys.executable, "-m", "orchestrator", "--registry", tmp, "sync",
                                                "--json"], check=True, capture_output=True, text=True).stdout)
            second_s = time.perf_counter() - start
        start = time.perf_counter()
        for job_id in ids:
            subprocess.run(["sacct", "--parsable2", "--noheader", "--jobs", job_id], check=True, capture_output=True)
        baseline_s = time.perf_counter() - start
    finally:
        subprocess.run(["scancel", *ids], check=False, capture_output=True)
    print(f"{'':34s}{'scheduler calls':>16s}{'wall':>10s}")
    print(f"{'orch sync, first tick':34s}{report['scheduler_calls']:16d}{tick_s:9.2f}s   ({report['tracked']} tracked)")
    print(f"{'orch sync, next tick':34s}{second['scheduler_calls']:16d}{second_s:9.2f}s")
    print(f"{'one sacct per job (baseline)':34s}{len(ids):16d}{baseline_s:9.2f}s")


if __name__ == "__main__":
    main()
