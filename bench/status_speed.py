"""`orch status ID` and `orch status` wall time over a registry of N job records (targets: < 0.2 s
and < 1 s), warm and, where the kernel allows dropping the page cache, cold.

The registry is real files written the way submit, the job and sync write them: per job a
submission, a scheduler record, 25 trial lines and a result; the index comes from the same
row function sync uses. Baseline in the same run: `python -c pass`.

With ``--big`` it measures instead one large job (targets: < 1 s and < 200 MB peak RSS): a
failed job whose ``trials.jsonl`` holds 10,000 trials with long per-epoch histories (about 300 MB)
and whose ``job.out`` is one 250 MB line, so that ``orch status ID`` shows its log's tail too;
side by side, the same records parsed whole (what ``orch status ID`` did before it skimmed them).

    python bench/status_speed.py [--jobs 10000]
    python bench/status_speed.py --big [--trials 10000] [--log-mb 250]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.core import index
from orchestrator.core.files import append_json_line, write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.track.sync import row


def make_registry(root: Path, jobs: int) -> list[str]:
    ids = [str(17_000_000 + i) for i in range(jobs)]
    rows = {}
    for n, job_id in enumerate(ids):
        submission = {"scheduler": "slurm", "submitted_at": f"2026-{1 + n * 11 // jobs:02d}-01T00:00:00+00:00",
                      "request": {"mem_gb": 20}, "attempt": 1, "plane": "X",
                      "config": {"label": f"prod_main_v{1 + n % 4}", "name": "prod_main", "version": 1 + n % 4},
                      "estimate": {"peak_gb": 16.0}}
        paths = create_entry(root, job_id, {"submission.json": json.dumps(submission),
                                            "config.json": json.dumps({"model_parameters": {"hp_max_evals": 25}})})
        scheduler = {"state": "COMPLETED", "reason": "", "source": "sacct", "max_rss_bytes": 15 * 1024**3,
                     "recovery": {"decision": "completed", "child_job_id": None, "decided_at": "2026-01-01"}}
        write_json_atomic(paths.scheduler, scheduler)
        for trial in range(25):
            append_json_line(paths.trials, {"trial": trial, "job_id": job_id, "status": "ok", "loss": 0.3 - trial / 1e3,
                                            "objective": 0.3 - trial / 1e3, "objective_name": "val_loss",
                                            "metrics": {"val_loss": 0.3, "val_accuracy": 0.9}, "duration_s": 600,
                                            "peak_rss_mb": 9000, "params": {"n_filters": 64}})
        write_json_atomic(paths.result, {"test": {"accuracy": 0.9, "precision": 0.7, "recall": 0.6, "f1": 0.65,
                                                  "auc": 0.91, "samples": 111904, "threshold": 0.5}, "artifacts": {}})
        rows[job_id] = row(JobPaths(root, job_id), submission, scheduler)
    index.save(root, rows, "2026-11-21T00:00:00+00:00")
    return ids


def make_big_job(root: Path, trials: int, log_mb: int) -> str:
    """One failed job with ``trials`` trial lines of about 30 KB each and a one-line ``job.out`` of
    ``log_mb`` MB; its ID."""
    job_id = "18000000"
    submission = {"scheduler": "slurm", "submitted_at": "2026-11-01T00:00:00+00:00", "request": {"mem_gb": 20},
                  "attempt": 1, "plane": "X", "config": {"label": "prod_main_v4", "name": "prod_main", "version": 4},
                  "estimate": {"peak_gb": 16.0}}
    paths = create_entry(root, job_id, {"submission.json": json.dumps(submission),
                                        "config.json": json.dumps({"model_parameters": {"hp_max_evals": trials}})})
    write_json_atomic(paths.scheduler, {"state": "FAILED", "reason": "", "source": "sacct",
                                        "max_rss_bytes": 15 * 1024**3})
    epochs = [round(0.5 + e / 1e4, 6) for e in range(470)]
    history = {k: epochs for k in ("loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc", "lr", "f1")}
    with open(paths.trials, "w") as handle:  # one write per trial would take minutes: the same lines, buffered
        for trial in range(trials):
            handle.write(json.dumps({"trial": trial, "job_id": job_id, "status": "ok", "loss": 0.3 - trial / 1e6,
                                     "objective": 0.3 - trial / 1e6, "objective_name": "val_loss",
                                     "metrics": {"val_loss": 0.3, "val_accuracy": 0.9}, "duration_s": 600,
                                     "peak_rss_mb": 9000, "params": {"n_filters": 64}, "history": history},
                                    sort_keys=True) + "\n")
    with open(paths.log, "wb") as handle:
        for _ in range(log_mb):
            handle.write(b"x" * 1024**2)
        handle.write(b"\n")
    return job_id


def peak(argv: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of one run of ``argv``, measured in a fresh process of its own."""
    probe = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", probe, *argv], check=True, capture_output=True, text=True).stdout
    wall_s, rss_mb = out.split()
    return float(wall_s), float(rss_mb)


def main_big(trials: int, log_mb: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        job_id = make_big_job(Path(tmp), trials, log_mb)
        size = (Path(tmp) / "jobs" / job_id / "trials.jsonl").stat().st_size / 1e6
        print(f"one job of {trials} trials ({size:.0f} MB) and a {log_mb} MB log line written in "
              f"{time.perf_counter() - start:.0f} s")
        whole = ("import sys; from pathlib import Path; from orchestrator.core import attempts; "
                 "from orchestrator.core.registry import JobPaths; attempts.search_records(JobPaths(Path(sys.argv[1]), "
                 "sys.argv[2]))")
        for what, argv in {"python -c pass (baseline)": [sys.executable, "-c", "pass"],
                           "every record parsed whole": [sys.executable, "-c", whole, tmp, job_id],
                           "orch status ID": [sys.executable, "-m", "orchestrator", "--registry", tmp, "status",
                                              job_id]}.items():
            wall_s, rss_mb = min(peak(argv) for _ in range(3))
            print(f"{what:32s}{wall_s:8.3f} s {rss_mb:8.0f} MB peak RSS (best of 3)")


def wall(argv: list[str], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--big", action="store_true", help="one job with a large trials.jsonl and job.out instead")
    parser.add_argument("--trials", type=int, default=10000, help="with --big: trial lines")
    parser.add_argument("--log-mb", type=int, default=250, help="with --big: size of the one-line job.out")
    args = parser.parse_args()
    if args.big:
        return main_big(args.trials, args.log_mb)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ids = make_registry(Path(tmp), args.jobs)
        print(f"registry of {len(ids)} jobs written in {time.perf_counter() - start:.0f} s")
        orch = [sys.executable, "-m", "orchestrator", "--registry", tmp, "status"]
        commands = {"python -c pass (baseline)": [sys.executable, "-c", "pass"],
                    "orch status ID": [*orch, ids[len(ids) // 2]],
                    "orch status (20 newest)": orch,
                    "orch status --all (every job)": [*orch, "--all"]}
        print(f"{'':32s}{'warm':>9s}{'cold':>9s}")
        for what, argv in commands.items():
            warm = wall(argv)
            cold = wall(argv, repeat=1) if drop_caches() else None
            print(f"{what:32s}{warm:8.3f}s" + (f"{cold:8.3f}s" if cold is not None else "  (cannot drop caches here)"))


if __name__ == "__main__":
    main()
