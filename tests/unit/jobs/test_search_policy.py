"""The trial loop's policies: history rebuilt from records, failures, stop requests.

The trial runner here is a stand-in returning records (a policy test); real
trials run in tests/integration/test_job.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from jobs.coordination import Coordinator
from jobs.search import run_search
from jobs.suggester import suggester_for
from orchestrator.core.attempts import best_record, search_records
from orchestrator.core.config_file import load_config
from orchestrator.core.files import append_json_line
from orchestrator.core.registry import JobPaths, create_entry
from tests.helpers import v4_config


class ScriptedRunner:
    """Returns ok records with loss = learning_rate, or failures where the script says so."""

    def __init__(self, paths: JobPaths, fail: set[int] = frozenset(), stop_at: int | None = None) -> None:
        self.paths, self.fail, self.stop_at = paths, fail, stop_at
        self.stop_requested = False
        self.ran: list[int] = []

    def abort(self) -> None:
        raise AssertionError("no claim is taken over in these tests")

    def run(self, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        if tid == self.stop_at:
            self.stop_requested = True
            return None
        self.ran.append(tid)
        record = {"trial": tid, "job_id": self.paths.job_id, "vals": vals, "params": params}
        if tid in self.fail:
            return {**record, "status": "failed", "reason": f"scripted failure {tid}"}
        loss = params["learning_rate"]
        return {**record, "status": "ok", "objective": loss, "loss": loss, "duration_s": 1.0, "peak_rss_mb": 1.0}


def config_for(write_config: Callable[..., Path], evals: int, failures: int = 3, algorithm: str = "tpe",
               startup: int | None = None):
    cfg = v4_config()
    cfg["model_parameters"].update(hp_max_evals=evals, max_consecutive_failures=failures, algorithm=algorithm)
    if startup is not None:
        cfg["model_parameters"]["startup_trials"] = startup
    return load_config(write_config(cfg))


@pytest.mark.parametrize("algorithm", ["tpe", "optuna_tpe"])
def test_same_history_gives_the_same_next_suggestion_after_a_json_round_trip(
        write_config: Callable[..., Path], workdir: Path, algorithm: str) -> None:
    config = config_for(write_config, 30, algorithm=algorithm)
    live = suggester_for(config)
    records = []
    for tid in range(24):  # past the random start-up trials (20 and 10), so each TPE itself is exercised
        vals, params = live.suggest(tid)
        record = {"trial": tid, "vals": vals, "status": "ok", "loss": params["learning_rate"]}
        live.add_all([record])
        records.append(json.loads(json.dumps(record)))
    rebuilt = suggester_for(config)
    rebuilt.add_all(records)
    assert rebuilt.suggest(24) == live.suggest(24)
    other = suggester_for(config)
    best = min(records, key=lambda r: r["loss"])
    other.add_all([r for r in records if r is not best])
    assert other.suggest(24) != live.suggest(24)  # the suggestion does depend on the history


def test_random_search_points_depend_on_the_seed_and_trial_number_only(
        write_config: Callable[..., Path], workdir: Path) -> None:
    config = config_for(write_config, 30, algorithm="random")
    assert config.model.startup_trials == 30
    history = [{"trial": n, "vals": suggester_for(config).suggest(n)[0], "status": "ok", "loss": n} for n in range(5)]
    with_history = suggester_for(config)
    with_history.add_all(history)
    assert with_history.suggest(5, [(4, history[4]["vals"])]) == suggester_for(config).suggest(5)
    assert suggester_for(config).suggest(6) != suggester_for(config).suggest(5)


def test_optuna_counts_pending_and_failed_trials_toward_its_start_up(write_config: Callable[..., Path],
                                                                     workdir: Path) -> None:
    config = config_for(write_config, 30, algorithm="optuna_tpe", startup=5)
    points = [suggester_for(config).suggest(n)[0] for n in range(5)]

    def proposal(ok: int, running: int) -> dict[str, Any]:
        """Trial 5's point after trials 0 and 1 ended (``ok`` of them ok, the other failed), with
        ``running`` of trials 2-4 still running."""
        history = suggester_for(config)
        history.add_all([{"trial": n, "vals": points[n], "status": "ok" if n == ok else "failed", "loss": 0.1}
                         for n in (0, 1)])
        return history.suggest(5, [(n, points[n]) for n in range(2, 2 + running)])[0]

    # 2 ended + 2 running < 5: still random start-up, so which one failed does not matter
    assert proposal(ok=0, running=2) == proposal(ok=1, running=2)
    # 2 ended + 3 running = 5: the TPE models, and the failure counts as the worst result
    assert proposal(ok=0, running=3) != proposal(ok=1, running=3)


@pytest.mark.parametrize("algorithm", ["tpe", "optuna_tpe", "random"])
def test_a_reused_suggester_proposes_what_a_fresh_one_does_with_or_without_pending_trials(
        write_config: Callable[..., Path], workdir: Path, algorithm: str) -> None:
    config = config_for(write_config, 30, algorithm=algorithm)
    reused = suggester_for(config)
    records: list[dict[str, Any]] = []
    for tid in range(26):
        pending = [(r["trial"], r["vals"]) for r in records[-2:]] if tid % 3 == 0 else []
        reused.reset(records)
        fresh = suggester_for(config)
        fresh.add_all(records)
        vals, params = reused.suggest(tid, pending)
        assert (vals, params) == fresh.suggest(tid, pending)
        records.append({"trial": tid, "vals": vals, "status": "ok", "loss": params["learning_rate"]})
    if algorithm != "random":  # random search reads no history, pending or not
        with_liar = suggester_for(config)
        with_liar.add_all(records[:-3])
        alone = with_liar.suggest(26)
        assert with_liar.suggest(26, [(r["trial"], r["vals"]) for r in records[-3:]]) != alone  # pending count


def test_consecutive_failures_stop_the_search_and_single_ones_do_not(
        write_config: Callable[..., Path], workdir: Path) -> None:
    paths = JobPaths(workdir / "registry", "100")
    paths.dir.mkdir(parents=True)
    config = config_for(write_config, 10, failures=3)
    outcome = run_search(config, paths, ScriptedRunner(paths, fail={1, 4, 5, 6}), Coordinator(paths, 10, 300),
                         log=lambda _: None)
    assert outcome.status == "failed"
    assert outcome.reason == "3 consecutive trials failed; last: scripted failure 6"
    assert [r["trial"] for r in outcome.records] == list(range(7))


@pytest.mark.parametrize("algorithm", ["tpe", "optuna_tpe", "random"])
def test_resume_runs_only_the_missing_trials_across_attempts(write_config: Callable[..., Path], workdir: Path,
                                                             algorithm: str) -> None:
    root = workdir / "registry"
    config = config_for(write_config, 6, algorithm=algorithm, startup=None if algorithm == "random" else 2)
    first = JobPaths(root, "200")
    first.dir.mkdir(parents=True)
    outcome = run_search(config, first, ScriptedRunner(first, stop_at=3), Coordinator(first, 6, 300),
                         log=lambda _: None)
    assert outcome.status == "interrupted" and len(outcome.records) == 3
    create_entry(root, "201", {"submission.json": json.dumps({"parent_job_id": "200"})})
    second = JobPaths(root, "201")
    runner = ScriptedRunner(second)
    outcome = run_search(config, second, runner, Coordinator(second, 6, 300), log=lambda _: None)
    assert outcome.status == "completed"
    assert runner.ran == [3, 4, 5]
    assert [(r["trial"], r["job_id"]) for r in search_records(second)] == [
        (0, "200"), (1, "200"), (2, "200"), (3, "201"), (4, "201"), (5, "201")]


def test_a_trial_recorded_twice_keeps_its_first_record(workdir: Path) -> None:
    paths = JobPaths(workdir / "registry", "300")
    paths.dir.mkdir(parents=True)
    for loss in (0.5, 0.1):
        append_json_line(paths.trials, {"trial": 0, "job_id": "300", "status": "ok", "loss": loss})
    assert [r["loss"] for r in search_records(paths)] == [0.5]


def test_best_record_ignores_failures_and_breaks_ties_by_trial() -> None:
    records = [{"trial": 0, "status": "failed"}, {"trial": 1, "status": "ok", "loss": 0.2},
               {"trial": 2, "status": "ok", "loss": 0.2}, {"trial": 3, "status": "ok", "loss": float("nan")}]
    assert best_record(records)["trial"] == 1
