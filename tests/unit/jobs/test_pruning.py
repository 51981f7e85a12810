"""The pruning rules on hand-written curves, the config block, and pruned trials in the trial loop
(a stand-in runner; real Keras trials are pruned in tests/integration/test_pruning.py)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from jobs.coordination import Coordinator
from jobs.pruning import Curve, best_so_far, decide, rungs
from jobs.search import run_search
from jobs.suggester import Suggester
from orchestrator.core import claims
from orchestrator.core.attempts import best_record, search_records
from orchestrator.core.config import Pruning
from orchestrator.core.config_file import load_config
from orchestrator.core.errors import InputError
from orchestrator.core.registry import JobPaths
from tests.helpers import v4_config

MEDIAN = Pruning("median", min_epochs=2, warmup_trials=2, reduction_factor=3)
HALVING = Pruning("halving", min_epochs=2, warmup_trials=0, reduction_factor=3)


def done(*best: float) -> Curve:
    return Curve(tuple(best), finished=True)


def running(*best: float) -> Curve:
    return Curve(tuple(best), finished=False)


def test_best_so_far_is_the_running_minimum_and_skips_nan() -> None:
    assert best_so_far([0.5, 0.7, 0.4, float("nan"), 0.45]) == [0.5, 0.5, 0.4, 0.4, 0.4]


def test_median_waits_for_its_warm_up_trials_and_min_epochs() -> None:
    others = [done(0.3, 0.2, 0.1)]
    assert decide(MEDIAN, [0.9, 0.9], others) is None  # one finished trial, two needed
    others.append(done(0.3, 0.2, 0.1))
    assert decide(MEDIAN, [0.9], others) is None  # epoch 1 < min_epochs
    assert "worse than the median 0.2 of 2 trials" in decide(MEDIAN, [0.9, 0.9], others)


def test_median_ties_go_on_and_shorter_finished_trials_count_with_their_last_value() -> None:
    others = [done(0.5, 0.4), done(0.5, 0.3, 0.2, 0.1), running(0.6)]
    # at epoch 3: the first trial stopped at 0.4 (counts as 0.4), the second is at 0.2, the running
    # one has not reached epoch 3 (left out): median 0.3
    assert decide(MEDIAN, [0.5, 0.35, 0.3], others) is None
    assert decide(MEDIAN, [0.5, 0.35, 0.31], others) is not None
    assert decide(MEDIAN, [0.6, 0.6], [done(), done()]) is None  # trials without any epoch say nothing


def test_halving_decides_at_rungs_only_and_keeps_the_top_third() -> None:
    assert rungs(2, 3, 30) == [2, 6, 18]
    others = [done(0.1, 0.1), done(0.2, 0.2), done(0.3, 0.3)]
    assert decide(HALVING, [0.9], others) is None  # before the first rung
    assert "not in the top 1 of 4 trials (2 better)" in decide(HALVING, [0.9, 0.25], others)
    assert decide(HALVING, [0.9, 0.05], others) is None
    assert decide(HALVING, [0.9, 0.25, 0.2], others) is None  # epoch 3 is no rung


def test_halving_lets_the_only_trial_at_a_rung_and_ties_go_on() -> None:
    assert decide(HALVING, [0.9] * 6, [done(0.1, 0.1)]) is None  # nobody else reached epoch 6
    assert decide(HALVING, [0.2, 0.2], [done(0.2, 0.2), done(0.2, 0.2)]) is None


def test_the_same_curves_give_the_same_decision() -> None:
    others = [done(0.5, 0.4, 0.35), running(0.45, 0.41), done(0.6, 0.6, 0.55)]
    for rule in (MEDIAN, HALVING):
        assert {decide(rule, [0.7, 0.5], list(others)) for _ in range(5)} == {decide(rule, [0.7, 0.5], others)}


@pytest.mark.parametrize("block, message", [
    ({"method": "mean"}, 'pruning.method: expected "none", "median" or "halving"'),
    ({"method": "median", "min_epoch": 2}, "did you mean"),
    ({"method": "median", "reduction_factor": 3}, 'reduction_factor is for method "halving"'),
    ({"method": "halving", "reduction_factor": 1}, "expected an integer ≥ 2"),
    ({"method": "median", "warmup_trials": -1}, "expected an integer ≥ 0"),
])
def test_bad_pruning_blocks_are_one_line_errors(write_config: Callable[..., Path], block: dict[str, Any],
                                                message: str) -> None:
    cfg = v4_config()
    cfg["model_parameters"]["pruning"] = block
    with pytest.raises(InputError) as error:
        load_config(write_config(cfg))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_default_is_no_pruning(write_config: Callable[..., Path]) -> None:
    assert load_config(write_config(v4_config())).model.pruning.method == "none"


class PruningRunner:
    """Pruned records for the trials listed, ok ones otherwise (loss = learning_rate); hangs at ``hang_at``
    (to be killed there)."""

    def __init__(self, paths: JobPaths, pruned: set[int], fail: set[int] = frozenset(),
                 hang_at: int | None = None) -> None:
        self.paths, self.pruned, self.fail, self.hang_at = paths, pruned, fail, hang_at
        self.stop_requested = False
        self.ran: list[int] = []

    def abort(self) -> None:
        raise AssertionError("no claim is taken over here")

    def run(self, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        if tid == self.hang_at:
            time.sleep(600)
        self.ran.append(tid)
        record = {"trial": tid, "job_id": self.paths.job_id, "vals": vals, "params": params, "duration_s": 1.0,
                  "peak_rss_mb": 1.0, "epochs_run": 3 if tid in self.pruned else 10}
        if tid in self.fail:
            return {**record, "status": "failed", "reason": "scripted"}
        status = "pruned" if tid in self.pruned else "ok"
        loss = params["learning_rate"] + (1 if status == "pruned" else 0)
        return {**record, "status": status, "objective": loss, "loss": loss, "reason": "scripted" * (status != "ok")}


def _search(config: Any, paths: JobPaths, runner: PruningRunner) -> None:
    """The trial loop in a process of its own (its claims carry its pid)."""
    run_search(config, paths, runner, Coordinator(paths, 8, 300), log=lambda _: None)


def test_pruned_trials_count_toward_the_total_and_the_search_resumes_after_a_kill(
        write_config: Callable[..., Path], workdir: Path) -> None:
    cfg = v4_config()
    cfg["model_parameters"].update(hp_max_evals=8, max_consecutive_failures=2)
    config = load_config(write_config(cfg))
    paths = JobPaths(workdir / "registry", "400")
    paths.dir.mkdir(parents=True)
    first = PruningRunner(paths, pruned={1, 3, 4}, fail={2, 5}, hang_at=6)
    # failures 2 and 5 are not consecutive (pruned 3 and 4 between): the search goes on to trial 6
    victim = multiprocessing.get_context("fork").Process(target=_search, args=(config, paths, first))
    victim.start()
    deadline = time.monotonic() + 60
    while claims.trial_key(6) not in claims.current(paths.claims) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # in the middle of trial 6
    victim.join()
    before = search_records(paths)
    assert [r["trial"] for r in before] == list(range(6))
    again = PruningRunner(paths, pruned={6, 7})  # started again, as a requeue would
    assert run_search(config, paths, again, Coordinator(paths, 8, 300), log=lambda _: None).status == "completed"
    assert again.ran == [6, 7]  # none lost, none run twice
    records = search_records(paths)
    assert records[:6] == before
    assert [r["status"] for r in records] == ["ok", "pruned", "failed", "pruned", "pruned", "failed", "pruned",
                                              "pruned"]
    assert best_record(records)["trial"] == 0  # a pruned trial is never the best while an ok one exists
    assert best_record([r for r in records if r["status"] == "pruned"])["status"] == "pruned"
    suggester = Suggester(config)
    suggester.add_all(records)
    assert sum(loss is not None for _, _, loss in suggester.history) == 6  # TPE learns from pruned trials
