"""The trial loop of one worker: claim a trial, propose its point, run it in its own process, record it.

History lives only in trial records (``trials.jsonl`` of every worker and attempt
of the search), so a job killed at any moment loses no finished trial, and the
search runs ``hp_max_evals`` trials in total whatever the number of workers:
each trial number is claimed by one worker at a time (``jobs.coordination``).
Trial ``n`` is proposed with the seed ``(random_seed, n)`` from the history as it
is right before the proposal, by the proposer the config names (``jobs.suggester``);
a trial taken over from a dead worker keeps the point that worker had proposed.

This module imports hyperopt (and Optuna where the config asks for it, through
``jobs.suggester``) and numpy, never Keras: trials run in child processes
(``jobs.worker``), so memory that Keras accumulates dies with each trial.
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

from jobs import thrash
from jobs.coordination import Coordinator, Heartbeat, Snapshot, Taken, beat_interval_s
from jobs.suggester import Suggester, suggester_for
from orchestrator.core.attempts import best_record
from orchestrator.core.config import Config
from orchestrator.core.files import append_json_line, make_dir, write_json_atomic
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths
from orchestrator.core.units import peak_rss_mib
from orchestrator.core.trials import FAILED, PRUNED, RESULTS



@dataclass
class Outcome:
    """How a worker's part of the search ended: "completed" (every trial of the search recorded),
    "failed" (too many consecutive failures), "out_of_memory" (a trial thrashed against the memory
    limit) or "interrupted"."""

    status: str
    reason: str
    records: list[dict[str, Any]]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


WATCH_S = 2.0  # how often a running trial's memory is looked at (where a limit applies)
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
        self.aborted = False
        self.limit_hits = thrash.limit_hits()  # None where no memory limit applies: nothing to watch

    def run(self, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        """The trial's record, or None when it was cut off (a stop request, or ``abort``); the loop
        has written the trial's request."""
        folder = self.paths.trial_dir(tid)
        (folder / "result.json").unlink(missing_ok=True)
        self.paths.progress(tid).unlink(missing_ok=True)
        self.paths.pulse(tid).unlink(missing_ok=True)
        point = trial_point(self.config, params)
        started, started_at = time.monotonic(), now()
        if self._start(["trial", str(self.paths.dir), str(tid)]) is None:
            return None
        code, usage, thrashing = self._wait((self.paths.progress(tid), self.paths.pulse(tid)))
        record = {"trial": tid, "job_id": self.paths.job_id, "vals": vals, "params": point,
                  "objective_name": self.config.model.objective.name, "started_at": started_at, "ended_at": now(),
                  "duration_s": round(time.monotonic() - started, 2), "peak_rss_mb": peak_rss_mib(usage)}
        result_file = folder / "result.json"
        if code == 0 and result_file.exists():
            result = read_json(result_file)
            if result["status"] in RESULTS:  # a pruned trial is a result too, only a shorter one
                value = result["metrics"][self.config.model.objective.name]
                record.update(status=result["status"], objective=value, loss=self.config.model.objective.loss(value))
                if result["status"] == PRUNED:
                    record["reason"] = result["reason"]
            else:
                record.update(status=FAILED, reason=result["reason"], failure="program")
            record.update({k: result.get(k) for k in ("metrics", "epochs_run", "best_epoch", "train_val_gap",
                                                      "steps_per_epoch")})
            return record
        if code < 0 and (self.stop_requested or self.aborted):
            return None
        if thrashing:  # the next attempt, with more memory, runs it again (``failure: resource``)
            record.update(status=FAILED, reason=thrashing, failure="resource", out_of_memory=True)
            return record
        killed = code == -signal.SIGKILL  # the kernel's OOM killer, or the scheduler enforcing a limit
        record.update(status=FAILED, reason=describe_exit(code), failure="resource" if killed else "program")
        return record

    def evaluate(self, model_file: Path) -> dict[str, Any] | None:
        """Run the final test evaluation of ``model_file`` in its own process; its ``final.json``, or
        None when a stop request cut it off."""
        if self._start(["final", str(self.paths.dir), str(model_file)]) is None:
            return None
        code, _, _ = self._wait(())
        if code != 0:
            if self.stop_requested:
                return None
            raise RuntimeError(f"final evaluation process exited with code {code}")
        final = read_json(self.paths.dir / "final.json")
        (self.paths.dir / "final.json").unlink()
        return final

    def _start(self, args: list[str]) -> subprocess.Popen[bytes] | None:
        """Start the child (a trial or the final) unless a stop or abort came first; ``stop`` and
        ``abort`` terminate it, also when they come while it starts."""
        if self.stop_requested or self.aborted:
            return None
        self.child = start_worker(args, self.env)
        if self.stop_requested or self.aborted:
            self.child.terminate()
        return self.child

    def _wait(self, signs: tuple[Path, ...]) -> tuple[int, Any, str | None]:
        """Wait for the child; its exit code, resource usage, and why it was killed for thrashing against
        the memory limit (``jobs.thrash``: watched when it has ``signs`` of progress), if it was."""
        assert self.child is not None
        watch = thrash.Watch(self.limit_hits, signs) if signs and self.limit_hits else None
        thrashing = None
        while True:
            pid, status, usage = os.wait4(self.child.pid, os.WNOHANG if watch else 0)
            if pid:
                break
            assert watch is not None
            if thrashing is None:
                thrashing = watch.check(time.monotonic())
                if thrashing:
                    self.child.kill()
            time.sleep(WATCH_S)
        self.child.returncode = code = os.waitstatus_to_exitcode(status)
        self.child = None
        return code, usage, thrashing

    def stop(self) -> None:
        """Ask the search to stop, and terminate the running trial (or final), if any."""
        self.stop_requested = True
        self.abort()

    def abort(self) -> None:
        """Terminate the running trial, if any, without recording it (its claim was taken over)."""
        self.aborted = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()


def describe_exit(code: int) -> str:
    """Why a trial process ended without a result."""
    if code == -signal.SIGKILL:
        return "trial process killed by SIGKILL (out of memory?)"
    if code < 0:
        return f"trial process killed by signal {signal.Signals(-code).name}"
    return f"trial process exited with code {code}; see the job log"


def run_search(config: Config, paths: JobPaths, runner: TrialRunner, coordinator: Coordinator,
               log: Callable[[str], None] = print) -> Outcome:
    """Take and run trials until every trial of the search is recorded; stop early on a stop request
    or after ``max_consecutive_failures`` failures of this worker in a row."""
    total = config.model.hp_max_evals
    view = coordinator.snapshot()
    if view.records:
        log(f"resuming: {len(view.records)} of {total} trials already recorded")
    failures = _trailing_failures([r for r in view.records.values() if r["job_id"] in coordinator.mine])
    poll_s = beat_interval_s(config.resources.heartbeat_limit_s)
    suggester = suggester_for(config)
    while True:
        if runner.stop_requested:
            view = coordinator.snapshot()
            return Outcome("interrupted", f"stop requested after {len(view.records)} of {total} trials",
                           ordered(view))
        taken = coordinator.take(now())
        if taken is None:
            view = coordinator.snapshot()
            if coordinator.finished(view):
                return Outcome("completed", f"{total} trials", ordered(view))
            time.sleep(poll_s)  # trials still run elsewhere: wait, to take over any whose worker dies
            continue
        claim = taken.claim
        record = run_claimed(config, runner, coordinator, suggester, taken, poll_s, log)
        if record is None:
            if runner.stop_requested:
                coordinator.release(claim, now())
                return Outcome("interrupted", f"stopped during trial {claim.trial + 1}; it will run again",
                               ordered(coordinator.snapshot()))
            log(f"trial {claim.trial + 1}/{total} was taken over by another worker; its run here is dropped")
            continue
        if record.get("out_of_memory"):  # every trial would thrash with this memory: the next attempt asks more
            return Outcome("out_of_memory", record["reason"], ordered(coordinator.snapshot()))
        if record["status"] in RESULTS:
            failures = 0
        else:
            failures += 1
            if failures >= config.model.max_consecutive_failures:
                return Outcome("failed", f"{failures} consecutive trials failed; last: {record['reason']}",
                               ordered(coordinator.snapshot()))


def run_claimed(config: Config, runner: TrialRunner, coordinator: Coordinator, suggester: Suggester, taken: Taken,
                beat_s: float, log: Callable[[str], None]) -> dict[str, Any] | None:
    """Propose (or keep the taken-over point), run and record the claimed trial; its record, or None
    when it was cut off."""
    claim, tid, total = taken.claim, taken.claim.trial, config.model.hp_max_evals
    runner.aborted = False  # before the heartbeat can set it: a takeover seen from now on cuts this trial off
    with Heartbeat(claim, beat_s, runner.abort) as heartbeat:
        if taken.previous is not None:
            vals, params = taken.previous["vals"], taken.previous["params"]
            log(f"trial {tid + 1}/{total}: taken over, same point: {json.dumps(params, sort_keys=True)}")
        else:
            suggester.reset(ordered(taken.view))
            vals, params = suggester.suggest(tid, coordinator.pending(taken.view))
            log(f"trial {tid + 1}/{total}: {json.dumps(params, sort_keys=True)}")
        if heartbeat.lost:
            return None
        write_request(config, runner.paths, tid, vals, params)  # the point is known to the others from now on
        record = runner.run(tid, vals, params)
        if record is None:
            return None
        record["claim_generation"] = claim.generation
        append_json_line(runner.paths.trials, record)
    if record["status"] in RESULTS:
        log(f"trial {tid + 1}/{total}: {config.model.objective} {record['objective']:.4f} "
            f"({record['duration_s']:.0f} s, peak {record['peak_rss_mb']:.0f} MB)"
            + (f", pruned after {record['epochs_run']} epochs" if record["status"] == PRUNED else ""))
    else:
        log(f"trial {tid + 1}/{total} failed: {record['reason']}")
    return record


def trial_point(config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """Every builder value of a trial: the proposed params over the fixed defaults."""
    return {**config.model.space.fixed(), "batch_size": config.model.batch_size, **params}


def write_request(config: Config, paths: JobPaths, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> None:
    """Publish trial ``tid``'s point before it runs: its process reads it, and the other workers'
    proposers count it as pending."""
    make_dir(paths.trial_dir(tid), own=True)
    write_json_atomic(paths.request(tid), {"trial": tid, "point": trial_point(config, params), "vals": vals,
                                           "params": params, "seed": config.dataset.random_seed + tid})


def ordered(view: Snapshot) -> list[dict[str, Any]]:
    """The snapshot's records by trial number."""
    return [view.records[n] for n in sorted(view.records)]


def _trailing_failures(records: list[dict[str, Any]]) -> int:
    """How many of this worker's latest records, in the order they ended, are failures."""
    count = 0
    for record in sorted(records, key=lambda r: (r.get("ended_at") or "", r["trial"]), reverse=True):
        if record["status"] in RESULTS:
            break
        count += 1
    return count


def model_path(paths: JobPaths, record: dict[str, Any]) -> Path:
    """Where the trial of ``record`` saved its model (in the directory of the attempt that ran it)."""
    return JobPaths(paths.root, record["job_id"]).trial_dir(record["trial"]) / "model.keras"


def prune_models(paths: JobPaths, records: list[dict[str, Any]]) -> None:
    """Keep only the best trial's saved model (the others can be large); only this job's files."""
    best = best_record(records)
    for record in records:
        if record["job_id"] == paths.job_id and (best is None or record["trial"] != best["trial"]):
            model_path(paths, record).unlink(missing_ok=True)
