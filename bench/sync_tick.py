"""One `orch sync` tick with N tracked jobs on the real SLURM: scheduler calls and wall time,
against the baseline of one sacct per job (what per-job polling loops do). Target: ≤ 2 calls.

The jobs are real: N held `sbatch --wrap true` submissions (PENDING while measured, cancelled
after), each with a registry entry as `orch submit` writes it. Needs scripts/local-slurm.

The first tick sees N new jobs, so it rewrites the overview page (`index/overview.html`); that
refresh is timed again on its own over the same rows (none settled: each search's summary is read
from its files, the page's costliest case) and printed beside the tick without it. The next tick
changes nothing and does not rewrite the page.

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

from orchestrator.core import index, slurm
from orchestrator.core.registry import create_entry
from orchestrator.present import overview


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
            refresh_s = min(refresh_time(root) for _ in range(3))
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
    print(f"{'orch sync, next tick':34s}{second['scheduler_calls']:16d}{second_s:9.2f}s   (overview page "
          f"{'rewritten: it should not be' if second['overview'] else 'not rewritten: nothing changed'})")
    print(f"{'one sacct per job (baseline)':34s}{len(ids):16d}{baseline_s:9.2f}s")
    print()
    print(f"{'':34s}{'tick':>10s}{'overview refresh':>18s}{'tick without it':>17s}")
    written = "the tick rewrote the page" if report["overview"] else "the tick did not write the page: it should"
    print(f"{'orch sync, first tick':34s}{tick_s:9.2f}s{refresh_s:17.2f}s{tick_s - refresh_s:16.2f}s"
          f"   (refresh alone: best of 3; {written})")


def refresh_time(root: Path) -> float:
    """Seconds of one overview refresh over the index rows as the tick left them."""
    rows = index.load(root)
    start = time.perf_counter()
    overview.refresh(root, rows)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
