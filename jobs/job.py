"""The job process (one worker of a search): ``python -m jobs.<task> --registry ROOT --config-sha256 H``,
its ID from its environment (``orchestrator.core.jobenv``), its directory ``ROOT/jobs/<job_id>``.

Order of work: record the run (``run.json``), prepare the search's data cache once
(``data.json``), take and run trials until every trial of the search is recorded
(``jobs.search``); then the worker that claims the final step (exactly one per search,
``orchestrator.core.claims``) evaluates the best trial's saved model on the test split and
writes the artifacts and ``result.json``.

The final evaluation reuses the best trial's model (with its restored best
weights) rather than retraining: it is exactly the model whose validation score
chose it, and a retrain would be a different model at extra cost.

Signals: SIGUSR1 (sent by SLURM ``--signal`` before the time limit) and SIGTERM
stop the running trial and record status ``interrupted``: every finished trial is
already recorded, the cut-off one runs again on resume. After SIGUSR1 under SLURM
the job then waits for the scheduler to end it, so its final state is the true
TIMEOUT (which recovery resumes) rather than an exit of its own. Otherwise it exits
75 (EX_TEMPFAIL). Exit codes: 0 completed, 1 failed, 2 bad input, 75 interrupted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from jobs import data
from jobs.coordination import Coordinator, Heartbeat, beat_interval_s
from jobs.launcher import InProcessLauncher, TrialLauncher
from jobs.search import Outcome, model_path, prune_models, run_search
from orchestrator.core import jobenv
from orchestrator.core.attempts import best_record
from orchestrator.core.clock import now
from orchestrator.core.config import Config, config_hash
from orchestrator.core.config_file import load_config
from orchestrator.core.errors import OrchError
from orchestrator.core.files import make_dir, write_atomic, write_json_atomic
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths, artifacts_dir
from orchestrator.core.state import EXIT_INTERRUPTED, RunStatus
from orchestrator.core.trials import OK, PRUNED
from orchestrator.core.units import peak_rss_mib


def peaks() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child (a trial), in MB."""
    return {"self_peak_rss_mb": peak_rss_mib(resource.getrusage(resource.RUSAGE_SELF)),
            "children_peak_rss_mb": peak_rss_mib(resource.getrusage(resource.RUSAGE_CHILDREN))}


def log(message: str) -> None:
    print(f"[{now()}] {message}", flush=True)


def write_artifacts(config: Config, paths: JobPaths, cache: Path, records: list[dict[str, Any]],
                    best: dict[str, Any], final: dict[str, Any]) -> dict[str, str]:
    """Artifacts named ``<job_id>_<what>`` so a job finds them and they find their job; what
    ``save_outputs`` turns off is not written."""
    out = artifacts_dir(paths, config.output_folder)
    make_dir(out)
    name = lambda what: out / paths.artifact_name(what)  # noqa: E731
    written: dict[str, str] = {}
    save = config.save_outputs
    if save["save_model"]:
        write_atomic(name("best_model.keras"), lambda tmp: shutil.copyfile(model_path(paths, best), tmp))
        written["model"] = str(name("best_model.keras"))
    if save["save_history"]:
        histories = {}
        for r in records:
            history_file = JobPaths(paths.root, r["job_id"]).trial_history(r["trial"])
            if history_file.exists():
                histories[str(r["trial"])] = read_json(history_file)
        write_json_atomic(name("history.json"), {"job_id": paths.job_id, "trials": histories})
        written["history"] = str(name("history.json"))
    scores = paths.final_scores
    if save["save_predictions"]:
        with np.load(scores) as z:
            meta = np.load(JobPaths.split_file(cache, "test", "metadata"))
            write_atomic(name("test_predictions.npz"),
                         lambda tmp: np.savez(tmp, labels=z["labels"], scores=z["scores"], metadata=meta))
        written["predictions"] = str(name("test_predictions.npz"))
    scores.unlink(missing_ok=True)
    pieces = {"save_confusion_matrix": ("confusion_matrix", {"matrix": final["test"]["confusion_matrix"],
                                                             "layout": "[[TN, FP], [FN, TP]]"}),
              "save_roc_curve": ("roc_curve", final["roc_curve"]),
              "save_metrics": ("metrics", final["test"])}
    for key, (what, content) in pieces.items():
        if save[key]:
            write_json_atomic(name(f"{what}.json"), {"job_id": paths.job_id, **content})
            written[what] = str(name(f"{what}.json"))
    return written


def run_job(paths: JobPaths, in_process: bool = False, trials: int = 0) -> int:
    """Run the job of ``paths`` to its end (see the module's docstring); its exit code. With
    ``in_process``, trials run in this process; with ``trials``, at most that many run here."""
    config = load_config(paths.config, submitted=jobenv.submitted_configs())
    if len(config.planes) != 1:
        raise OrchError(f"{paths.config}: a job trains one plane; got {list(config.planes)}")
    threads = jobenv.cpus()
    coordinator = Coordinator(paths, config.model.hp_max_evals, config.resources.heartbeat_limit_s)
    run = start_run(paths, config, coordinator, threads)
    if coordinator.finished(coordinator.snapshot()) and not coordinator.final_open():
        return end_run(paths, run, RunStatus.COMPLETED, "nothing left: every trial is recorded and the final step is taken")
    launcher = (InProcessLauncher if in_process else TrialLauncher)(config, paths, threads)
    received = stop_on_signals(launcher)
    timings: dict[str, float] = {}
    started = time.monotonic()
    record = data.prepare(config, config.planes[0], coordinator.search.cache, config_hash(config.raw))
    write_json_atomic(paths.data_record, record)
    timings["load_s"] = round(time.monotonic() - started, 2)
    log("data: " + ", ".join(f"{k} {v['samples']} ({v['positives']} positive)" for k, v in record["splits"].items()))

    started = time.monotonic()
    outcome: Outcome = run_search(config, paths, launcher, coordinator, log, trials)
    timings["trials_s"] = round(time.monotonic() - started, 2)
    prune_models(paths, outcome.records)
    status, reason = outcome.status, outcome.reason
    if status == RunStatus.COMPLETED:
        status, reason = run_final(config, paths, coordinator, launcher, outcome.records, timings)
    code = end_run(paths, run, status, reason)
    if status == RunStatus.INTERRUPTED and received == [signal.SIGUSR1] and jobenv.under_slurm():
        log("state saved; waiting for the scheduler to end the job at its time limit")
        while received == [signal.SIGUSR1]:
            signal.pause()
    return code


def start_run(paths: JobPaths, config: Config, coordinator: Coordinator, threads: int) -> dict[str, Any]:
    """Record in ``run.json`` that this job runs (counting restarts: a requeue, a takeover); the record."""
    run: dict[str, Any] = {"job_id": paths.job_id, "search_id": coordinator.search.job_id,
                           "host": socket.gethostname(), "pid": os.getpid(), "started_at": now(),
                           "status": RunStatus.RUNNING, "threads": threads, "plane": config.planes[0],
                           "python": sys.executable}
    previous = read_json(paths.run) if paths.run.exists() else None
    if previous:
        run["restarts"] = previous.get("restarts", 0) + 1
    write_json_atomic(paths.run, run)
    log(f"job {paths.job_id}: {config.label}, plane {config.planes[0]}, {threads} threads, "
        f"search {coordinator.search.job_id}")
    return run


def stop_on_signals(launcher: TrialLauncher) -> list[int]:
    """SIGUSR1 (before the time limit) and SIGTERM stop the search after saving its state; the list of
    the signals received, as they come."""
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log(f"received {signal.Signals(signum).name}: stopping after saving state")
        received.append(signum)
        launcher.stop()

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return received


def run_final(config: Config, paths: JobPaths, coordinator: Coordinator, launcher: TrialLauncher,
              records: list[dict[str, Any]], timings: dict[str, float]) -> tuple[str, str]:
    """The search's final step, if this worker claims it: the best trial's model on the test split,
    artifacts, ``result.json``. How this job ends: (status, reason)."""
    best = best_record(records)
    if best is None:
        return RunStatus.FAILED, "no trial finished ok"
    claim = coordinator.take_final(now())
    if claim is None:
        return RunStatus.COMPLETED, "every trial is recorded; another worker runs the final step"
    launcher.aborted = False
    with Heartbeat(claim, beat_interval_s(config.resources.heartbeat_limit_s), launcher.abort) as heartbeat:
        started = time.monotonic()
        final = launcher.evaluate(model_path(paths, best))
        if final is None or heartbeat.lost:
            if not launcher.stop_requested:
                return RunStatus.COMPLETED, "the final step was taken over by another worker"
            coordinator.release(claim, now())
            return RunStatus.INTERRUPTED, "stopped during the final step; it will run again"
        cache = coordinator.search.cache
        artifacts = write_artifacts(config, paths, cache, records, best, final)
        timings["final_s"] = round(time.monotonic() - started, 2)
        result = final_result(config, paths, config.planes[0], records, best, final, artifacts, timings)
        result["search_id"] = coordinator.search.job_id
        write_json_atomic(paths.result, result)
    shutil.rmtree(cache, ignore_errors=True)
    t = result["test"]
    log(f"completed: best trial {best['trial'] + 1}/{len(records)}, test accuracy {t['accuracy']:.4f} "
        f"F1 {t['f1']:.4f} AUC {t['auc']:.4f}; result {paths.result}")
    return RunStatus.COMPLETED, ""


def end_run(paths: JobPaths, run: dict[str, Any], status: str, reason: str) -> int:
    """Record how this job ended in ``run.json`` and log it; the job's exit code."""
    write_json_atomic(paths.run, {**run, "status": status, **({"reason": reason} if reason else {}),
                                  "ended_at": now(), **peaks()})
    if reason:
        log(f"{status}: {reason}")
    return {RunStatus.COMPLETED: 0, RunStatus.INTERRUPTED: EXIT_INTERRUPTED}.get(status, 1)


def final_result(config: Config, paths: JobPaths, plane: str, records: list[dict[str, Any]], best: dict[str, Any],
                 final: dict[str, Any], artifacts: dict[str, str], timings: dict[str, float]) -> dict[str, Any]:
    """The content of ``result.json``."""
    ok = [r for r in records if r["status"] == OK]
    return {
        "job_id": paths.job_id, "config": config.label, "plane": plane, "completed_at": now(),
        "objective_name": config.model.objective.name, "trials_total": len(records), "trials_ok": len(ok),
        "trials_pruned": sum(1 for r in records if r["status"] == PRUNED),
        "best_trial": best["trial"], "best_job_id": best["job_id"], "best_params": best["params"],
        "best_objective": best["objective"], "validation": best["metrics"], "test": final["test"],
        "final_model": "reused: the best trial's saved model (restored best weights), not retrained",
        "artifacts": artifacts, "timings": timings,
        "workers": sorted({r["job_id"] for r in records}),
    }


def main(task: str, argv: list[str] | None = None) -> int:
    """Entry point of ``python -m jobs.<task>``."""
    parser = argparse.ArgumentParser(prog=f"python -m jobs.{task}")
    parser.add_argument("--registry", required=True, type=Path, help="the registry root (absolute); this job's "
                        "ID comes from its environment: ORCH_JOB_ID, else SLURM's")
    parser.add_argument("--config-sha256", help="comma-separated hashes of the configs submitted: any other "
                                                "config.json is refused (its trials check it too)")
    parser.add_argument("--in-process", action="store_true", help="trials in this process, and an exception "
                        "raised, not only recorded (orch submit --debug)")
    parser.add_argument("--trials", type=int, default=0, help="run at most this many trials here (0: all)")
    args = parser.parse_args(argv)
    if args.config_sha256:
        os.environ[jobenv.SUBMITTED_CONFIGS] = args.config_sha256  # for the trial and final processes
    paths = JobPaths(args.registry, jobenv.job_id())
    try:
        return run_job(paths, args.in_process, args.trials)
    except Exception as exc:  # the job's last word goes to the registry, whatever it was
        if not isinstance(exc, OrchError):
            traceback.print_exc()
        reason = str(exc) if isinstance(exc, OrchError) else f"{type(exc).__name__}: {exc}"
        print(f"orch job: error: {reason}", file=sys.stderr, flush=True)
        if paths.run.exists():
            write_json_atomic(paths.run, {**read_json(paths.run), "status": RunStatus.FAILED, "reason": reason,
                                          "ended_at": now()})
        if args.in_process:
            raise  # to the debugger
        return exc.exit_code if isinstance(exc, OrchError) else 1
