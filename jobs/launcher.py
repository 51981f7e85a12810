"""Where a trial (or the final evaluation) runs: ``TrialLauncher`` starts it in its own process
(``python -m jobs.trial``), so that the memory Keras accumulates dies with each trial, watches it for
thrashing against the memory limit (``jobs.thrash``), and turns its outcome into the trial's record;
``InProcessLauncher`` runs it in the job's process instead (``orch submit --debug``), so that an
exception reaches the debugger where it was raised.

This module never imports Keras itself: ``jobs.trial`` does, in whichever process runs it.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from jobs import thrash
from orchestrator.core import jobenv
from orchestrator.core.clock import now
from orchestrator.core.config import Config
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths
from orchestrator.core.trials import FAILED, PRUNED, RESULTS
from orchestrator.core.units import peak_rss_mib

WATCH_S = 2.0  # how often a running trial's memory is looked at (where a limit applies)
# TensorFlow's C++ start-up lines, printed by every trial process before logging is set up
NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called|I0000 .*oneDNN custom "
                   r"operations are on)")

Ran = tuple[int, Any, "str | None"]  # exit code, resource usage, why it was killed for thrashing (if it was)


def start_trial_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``python -m jobs.trial ARGS``, killed with the job, its stderr passed on without
    TensorFlow's start-up noise."""
    child = subprocess.Popen([sys.executable, "-m", "jobs.trial", *args], env=env, stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, preexec_fn=jobenv.die_with_parent)

    def pump(stream: IO[bytes]) -> None:
        for line in stream:
            if not NOISE.match(line.decode(errors="replace")):
                sys.stderr.buffer.write(line)
                sys.stderr.flush()

    threading.Thread(target=pump, args=(child.stderr,), daemon=True).start()
    return child


class TrialLauncher:
    """Runs one trial (or the final evaluation) in a child process and turns its outcome into a record."""

    def __init__(self, config: Config, paths: JobPaths, threads: int) -> None:
        self.config = config
        self.paths = paths
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow",
                    jobenv.TRIAL_THREADS: str(threads)}
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_requested = False
        self.aborted = False
        self.limit_hits = thrash.limit_hits()  # None where no memory limit applies: nothing to watch

    def run(self, tid: int, vals: dict[str, Any], point: dict[str, Any]) -> dict[str, Any] | None:
        """The record of trial ``tid`` at ``point``, or None when it was cut off (a stop request, or
        ``abort``); the search loop has written the trial's request."""
        result_file = self.paths.trial_result(tid)
        for leftover in (result_file, self.paths.progress(tid), self.paths.pulse(tid)):
            leftover.unlink(missing_ok=True)
        started, started_at = time.monotonic(), now()
        ran = self._execute(["trial", str(self.paths.dir), str(tid)], (self.paths.progress(tid), self.paths.pulse(tid)))
        if ran is None:
            return None
        code, usage, thrashing = ran
        record = {"trial": tid, "job_id": self.paths.job_id, "vals": vals, "params": point,
                  "objective_name": self.config.model.objective.name, "started_at": started_at, "ended_at": now(),
                  "duration_s": round(time.monotonic() - started, 2), "peak_rss_mb": peak_rss_mib(usage)}
        if code == 0 and result_file.exists():
            return {**record, **self._outcome(read_json(result_file))}
        if code < 0 and (self.stop_requested or self.aborted):
            return None
        if thrashing:  # the next attempt, with more memory, runs it again (``failure: resource``)
            return {**record, "status": FAILED, "reason": thrashing, "failure": "resource", "out_of_memory": True}
        killed = code == -signal.SIGKILL  # the kernel's OOM killer, or the scheduler enforcing a limit
        return {**record, "status": FAILED, "reason": describe_exit(code), "failure": "resource" if killed else "program"}

    def _outcome(self, result: dict[str, Any]) -> dict[str, Any]:
        """What the trial's ``result.json`` adds to its record."""
        objective = self.config.model.objective
        if result["status"] in RESULTS:  # a pruned trial is a result too, only a shorter one
            value = result["metrics"][objective.name]
            outcome = {"status": result["status"], "objective": value, "loss": objective.loss(value),
                       **({"reason": result["reason"]} if result["status"] == PRUNED else {})}
        else:
            outcome = {"status": FAILED, "reason": result["reason"], "failure": "program"}
        return {**outcome, **{k: result.get(k) for k in ("metrics", "epochs_run", "best_epoch", "train_val_gap",
                                                          "steps_per_epoch")}}

    def evaluate(self, model_file: Path) -> dict[str, Any] | None:
        """The final test evaluation of ``model_file``: its ``final.json``, or None when a stop request
        cut it off."""
        ran = self._execute(["final", str(self.paths.dir), str(model_file)], ())
        if ran is None:
            return None
        if ran[0] != 0:
            if self.stop_requested:
                return None
            raise RuntimeError(f"final evaluation process exited with code {ran[0]}")
        final = read_json(self.paths.final_record)
        self.paths.final_record.unlink()
        return final

    def _execute(self, args: list[str], signs: tuple[Path, ...]) -> Ran | None:
        """Run ``python -m jobs.trial ARGS`` unless a stop or abort came first (they terminate it, also
        when they come while it starts); None when it never started."""
        if self.stop_requested or self.aborted:
            return None
        self.child = start_trial_process(args, self.env)
        if self.stop_requested or self.aborted:
            self.child.terminate()
        return self._wait(signs)

    def _wait(self, signs: tuple[Path, ...]) -> Ran:
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


class InProcessLauncher(TrialLauncher):
    """Runs each trial (and the final evaluation) in this process: an exception goes up to the caller
    (the debugger of ``orch submit --debug``) instead of becoming a failed trial. TensorFlow's threads
    are set once, for the process."""

    def __init__(self, config: Config, paths: JobPaths, threads: int) -> None:
        super().__init__(config, paths, threads)
        from jobs import trial

        self.trial = trial
        trial.setup_threads(threads)

    def _execute(self, args: list[str], signs: tuple[Path, ...]) -> Ran | None:
        if self.stop_requested or self.aborted:
            return None
        mode, job_dir, what = args
        self.trial.run(mode, JobPaths.from_dir(Path(job_dir)), what)
        return 0, resource.getrusage(resource.RUSAGE_SELF), None


def describe_exit(code: int) -> str:
    """Why a trial process ended without a result."""
    if code == -signal.SIGKILL:
        return "trial process killed by SIGKILL (out of memory?)"
    if code < 0:
        return f"trial process killed by signal {signal.Signals(-code).name}"
    return f"trial process exited with code {code}; see the job log"
