"""The trial loop of one worker: claim a trial, propose its point, run it (``jobs.launcher``), record it.

History lives only in trial records (``trials.jsonl`` of every worker and attempt
of the search), so a job killed at any moment loses no finished trial, and the
search runs ``hp_max_evals`` trials in total whatever the number of workers:
each trial number is claimed by one worker at a time (``jobs.coordination``).
Trial ``n`` is proposed with the seed ``(random_seed, n)`` from the history as it
is right before the proposal, by the proposer the config names (``jobs.suggester``);
a trial taken over from a dead worker keeps the point that worker had proposed.

This module imports hyperopt (and Optuna where the config asks for it, through
``jobs.suggester``) and numpy, never Keras: trials run in child processes
(``jobs.trial``), so memory that Keras accumulates dies with each trial.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from jobs.coordination import Coordinator, Heartbeat, Snapshot, Taken, beat_interval_s
from jobs.launcher import TrialLauncher
from jobs.suggester import Suggester, suggester_for
from orchestrator.core.attempts import best_record
from orchestrator.core.clock import now
from orchestrator.core.config import Config
from orchestrator.core.files import append_json_line, make_dir, write_json_atomic
from orchestrator.core.registry import JobPaths
from orchestrator.core.state import RunStatus
from orchestrator.core.trials import PRUNED, RESULTS


@dataclass
class Outcome:
    """How a worker's part of the search ended (a ``RunStatus``): completed (every trial of the search
    recorded), failed (too many consecutive failures), out of memory (a trial thrashed against the
    memory limit) or interrupted."""

    status: str
    reason: str
    records: list[dict[str, Any]]


def run_search(config: Config, paths: JobPaths, launcher: TrialLauncher, coordinator: Coordinator,
               log: Callable[[str], None] = print, limit: int = 0) -> Outcome:
    """Take and run trials until every trial of the search is recorded; stop early on a stop request,
    after ``max_consecutive_failures`` failures of this worker in a row, or after ``limit`` trials run
    here (0: no limit; ``orch submit --debug --trials``)."""
    total = config.model.hp_max_evals
    view = coordinator.snapshot()
    if view.records:
        log(f"resuming: {len(view.records)} of {total} trials already recorded")
    failures = _trailing_failures([r for r in view.records.values() if r["job_id"] in coordinator.mine])
    poll_s = beat_interval_s(config.resources.heartbeat_limit_s)
    suggester = suggester_for(config)
    ran = 0
    while True:
        if limit and ran >= limit and not coordinator.finished(coordinator.snapshot()):
            return Outcome(RunStatus.INTERRUPTED, f"stopped after {ran} trials here, as asked (--trials)",
                           ordered(coordinator.snapshot()))
        if launcher.stop_requested:
            view = coordinator.snapshot()
            return Outcome(RunStatus.INTERRUPTED, f"stop requested after {len(view.records)} of {total} trials",
                           ordered(view))
        taken = coordinator.take(now())
        if taken is None:
            view = coordinator.snapshot()
            if coordinator.finished(view):
                return Outcome(RunStatus.COMPLETED, f"{total} trials", ordered(view))
            time.sleep(poll_s)  # trials still run elsewhere: wait, to take over any whose worker dies
            continue
        claim = taken.claim
        record = run_claimed(config, launcher, coordinator, suggester, taken, poll_s, log)
        if record is None:
            if launcher.stop_requested:
                coordinator.release(claim, now())
                return Outcome(RunStatus.INTERRUPTED, f"stopped during trial {claim.trial + 1}; it will run again",
                               ordered(coordinator.snapshot()))
            log(f"trial {claim.trial + 1}/{total} was taken over by another worker; its run here is dropped")
            continue
        ran += 1
        if record.get("out_of_memory"):  # every trial would thrash with this memory: the next attempt asks more
            return Outcome(RunStatus.OUT_OF_MEMORY, record["reason"], ordered(coordinator.snapshot()))
        if record["status"] in RESULTS:
            failures = 0
        else:
            failures += 1
            if failures >= config.model.max_consecutive_failures:
                return Outcome(RunStatus.FAILED, f"{failures} consecutive trials failed; last: {record['reason']}",
                               ordered(coordinator.snapshot()))


def run_claimed(config: Config, launcher: TrialLauncher, coordinator: Coordinator, suggester: Suggester, taken: Taken,
                beat_s: float, log: Callable[[str], None]) -> dict[str, Any] | None:
    """Propose (or keep the taken-over point), run and record the claimed trial; its record, or None
    when it was cut off."""
    claim, tid, total = taken.claim, taken.claim.trial, config.model.hp_max_evals
    launcher.aborted = False  # before the heartbeat can set it: a takeover seen from now on cuts this trial off
    with Heartbeat(claim, beat_s, launcher.abort) as heartbeat:
        if taken.previous is not None:
            vals, params = taken.previous["vals"], taken.previous["params"]
            log(f"trial {tid + 1}/{total}: taken over, same point: {json.dumps(params, sort_keys=True)}")
        else:
            suggester.reset(ordered(taken.view))
            vals, params = suggester.suggest(tid, coordinator.pending(taken.view))
            log(f"trial {tid + 1}/{total}: {json.dumps(params, sort_keys=True)}")
        if heartbeat.lost:
            return None
        write_request(config, launcher.paths, tid, vals, params)  # the point is known to the others from now on
        record = launcher.run(tid, vals, trial_point(config, params))
        if record is None:
            return None
        record["claim_generation"] = claim.generation
        append_json_line(launcher.paths.trials, record)
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
    return JobPaths(paths.root, record["job_id"]).trial_model(record["trial"])


def prune_models(paths: JobPaths, records: list[dict[str, Any]]) -> None:
    """Keep only the best trial's saved model (the others can be large); only this job's files."""
    best = best_record(records)
    for record in records:
        if record["job_id"] == paths.job_id and (best is None or record["trial"] != best["trial"]):
            model_path(paths, record).unlink(missing_ok=True)
