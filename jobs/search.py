"""The trial loop: hyperopt TPE, one process per trial, every finished trial in the registry.

History lives only in trial records (``trials.jsonl`` of this job and of the
attempts it continues), so a job killed at any moment loses no finished trial:
on start the hyperopt history is rebuilt from the records and only the missing
trials run, ``hp_max_evals`` being the total. Trial ``n`` is suggested with the
seed ``(random_seed, n)``, so the same seed and the same history give the same
next point, and a trial cut off mid-way is run again with the same point.

This module imports hyperopt (through ``orchestrator.space``) and numpy, never
Keras: trials run in child processes (``jobs.worker``), so memory that Keras
accumulates dies with each trial.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable

from orchestrator.config import MAXIMIZED, Config
from orchestrator.attempts import best_record, search_records
from orchestrator.registry import JobPaths, append_json_line, read_json, write_json_atomic



@dataclass
class Outcome:
    """How a search ended: "completed", "failed" (too many consecutive failures) or "interrupted"."""

    status: str
    reason: str
    records: list[dict[str, Any]]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def loss_of(objective: str, value: float) -> float:
    """What hyperopt minimizes for an objective (accuracy-like objectives are negated)."""
    return -value if objective in MAXIMIZED else value


class Suggester:
    """hyperopt TPE driven one trial at a time over a history rebuilt from records."""

    def __init__(self, config: Config) -> None:
        from hyperopt import Trials, base

        self.space = config.model.space
        self.expr = self.space.to_hyperopt()
        self.domain = base.Domain(lambda _: 0.0, self.expr)
        self.trials = Trials()
        self.seed = config.dataset.random_seed

    def add(self, record: dict[str, Any]) -> None:
        """Put one finished trial into the history."""
        from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK

        tid = record["trial"]
        vals = {k: [v] for k, v in record["vals"].items()}
        result = ({"status": STATUS_OK, "loss": record["loss"]} if record["status"] == "ok"
                  else {"status": STATUS_FAIL})
        misc = {"tid": tid, "cmd": self.domain.cmd, "workdir": None, "idxs": {k: [tid] for k in vals},
                "vals": vals}
        [doc] = self.trials.new_trial_docs([tid], [None], [result], [misc])
        doc["state"] = JOB_STATE_DONE
        self.trials.insert_trial_docs([doc])
        self.trials.refresh()

    def suggest(self, tid: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The raw hyperopt values (choice indices) and the plain params of trial ``tid``."""
        from hyperopt import space_eval, tpe

        if not self.space.params:
            return {}, {}
        doc = tpe.suggest([tid], self.domain, self.trials, seed=self.seed * 100_003 + tid)[0]
        vals = {k: v[0].item() for k, v in doc["misc"]["vals"].items() if v}
        return vals, self.space.plain(space_eval(self.expr, vals))


# TensorFlow's C++ start-up lines, printed by every trial process before logging is set up
NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called|I0000 .*oneDNN custom "
                   r"operations are on)")


def start_worker(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``python -m jobs.worker ARGS``, killed with the job, its stderr passed on without
    TensorFlow's start-up noise."""
    child = subprocess.Popen([sys.executable, "-m", "jobs.worker", *args], env=env, stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, preexec_fn=_die_with_parent)

    def pump(stream: IO[bytes]) -> None:
        for line in stream:
            if not NOISE.match(line.decode(errors="replace")):
                sys.stderr.buffer.write(line)
                sys.stderr.flush()

    threading.Thread(target=pump, args=(child.stderr,), daemon=True).start()
    return child


def _die_with_parent() -> None:
    """In the trial process: be killed if the job process dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


class TrialRunner:
    """Runs one trial in a child process and turns its outcome into a record."""

    def __init__(self, config: Config, paths: JobPaths, threads: int) -> None:
        self.config = config
        self.paths = paths
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow",
                    "ORCH_THREADS": str(threads)}
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_requested = False

    def run(self, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        """The trial's record, or None when it was cut off by a stop request."""
        folder = self.paths.trial_dir(tid)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").unlink(missing_ok=True)
        point = {**self.config.model.space.fixed(), "batch_size": self.config.model.batch_size, **params}
        write_json_atomic(folder / "request.json", {"trial": tid, "point": point,
                                                    "seed": self.config.dataset.random_seed + tid})
        started, started_at = time.monotonic(), now()
        self.child = start_worker(["trial", str(self.paths.dir), str(tid)], self.env)
        _, status, usage = os.wait4(self.child.pid, 0)
        self.child.returncode = os.waitstatus_to_exitcode(status)
        code, self.child = self.child.returncode, None
        record = {"trial": tid, "job_id": self.paths.job_id, "vals": vals, "params": point,
                  "objective_name": self.config.model.objective, "started_at": started_at, "ended_at": now(),
                  "duration_s": round(time.monotonic() - started, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
        result_file = folder / "result.json"
        if code == 0 and result_file.exists():
            result = read_json(result_file)
            if result["status"] == "ok":
                value = result["metrics"][self.config.model.objective]
                record.update(status="ok", objective=value, loss=loss_of(self.config.model.objective, value))
            else:
                record.update(status="failed", reason=result["reason"], failure="program")
            record.update({k: result.get(k) for k in ("metrics", "epochs_run", "best_epoch", "train_val_gap",
                                                      "steps_per_epoch")})
            return record
        if code < 0 and self.stop_requested:
            return None
        killed = code == -signal.SIGKILL  # the kernel's OOM killer, or the scheduler enforcing a limit
        record.update(status="failed", reason=describe_exit(code), failure="resource" if killed else "program")
        return record

    def stop(self) -> None:
        """Ask the search to stop, and terminate the running trial, if any."""
        self.stop_requested = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()


def describe_exit(code: int) -> str:
    """Why a trial process ended without a result."""
    if code == -signal.SIGKILL:
        return "trial process killed by SIGKILL (out of memory?)"
    if code < 0:
        return f"trial process killed by signal {signal.Signals(-code).name}"
    return f"trial process exited with code {code}; see the job log"


def run_search(config: Config, paths: JobPaths, runner: TrialRunner,
               log: Callable[[str], None] = print) -> Outcome:
    """Run the missing trials of the search; stop early on a stop request or too many failures."""
    records = search_records(paths)
    suggester = Suggester(config)
    for record in records:
        suggester.add(record)
    total = config.model.hp_max_evals
    if records:
        log(f"resuming: {len(records)} of {total} trials already recorded")
    failures = 0
    for record in reversed(records):
        if record["status"] == "ok":
            break
        failures += 1
    while len(records) < total:
        if runner.stop_requested:
            return Outcome("interrupted", f"stop requested after {len(records)} of {total} trials", records)
        done = {r["trial"] for r in records}
        tid = next(n for n in range(total + 1) if n not in done)  # the first trial number not yet recorded
        vals, params = suggester.suggest(tid)
        log(f"trial {tid + 1}/{total}: {json.dumps(params, sort_keys=True)}")
        record = runner.run(tid, vals, params)
        if record is None:
            return Outcome("interrupted", f"stopped during trial {tid + 1}; it will run again on resume", records)
        append_json_line(paths.trials, record)
        records = sorted([*records, record], key=lambda r: r["trial"])
        suggester.add(record)
        if record["status"] == "ok":
            failures = 0
            log(f"trial {tid + 1}/{total}: {config.model.objective} {record['objective']:.4f} "
                f"({record['duration_s']:.0f} s, peak {record['peak_rss_mb']:.0f} MB)")
        else:
            failures += 1
            log(f"trial {tid + 1}/{total} failed: {record['reason']}")
            if failures >= config.model.max_consecutive_failures:
                return Outcome("failed", f"{failures} consecutive trials failed; last: {record['reason']}", records)
    return Outcome("completed", f"{total} trials", records)


def model_path(paths: JobPaths, record: dict[str, Any]) -> Path:
    """Where the trial of ``record`` saved its model (in the directory of the attempt that ran it)."""
    return JobPaths(paths.root, record["job_id"]).trial_dir(record["trial"]) / "model.keras"


def prune_models(paths: JobPaths, records: list[dict[str, Any]]) -> None:
    """Keep only the best trial's saved model (the others can be large); only this job's files."""
    best = best_record(records)
    for record in records:
        if record["job_id"] == paths.job_id and (best is None or record["trial"] != best["trial"]):
            model_path(paths, record).unlink(missing_ok=True)
