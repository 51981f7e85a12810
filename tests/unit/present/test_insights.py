"""Observations computed from records, in the words of the users' notes."""

from __future__ import annotations

import pytest

from orchestrator.present.insights import (
    improvements,
    search_insights,
    training_insights,
)
from orchestrator.present.report import fmt


def record(trial: int, loss: float | None) -> dict:
    if loss is None:
        return {"trial": trial, "status": "failed", "reason": "NaN loss at epoch 3"}
    return {"trial": trial, "status": "ok", "loss": loss}


def test_best_found_early_and_never_improved() -> None:
    records = [record(0, 0.30), record(1, 0.25), *(record(t, 0.28) for t in range(2, 10))]
    assert improvements(records) == [0, 1]
    assert search_insights(records, 10) == [
        "best result found very early (trial 2/10)", "no improvement in the remaining 8 trials",
        "the best so far improved once after trial 1, last at trial 2"]


def test_failures_and_trials_still_to_run() -> None:
    records = [record(0, 0.3), record(1, None), record(2, None)]
    lines = search_insights(records, 20)
    assert "2 of 3 trials failed: NaN loss at epoch 3 (2)" in lines
    assert "17 of 20 trials still to run" in lines


def test_training_plateau_best_epoch_and_overfitting() -> None:
    history = {"loss": [0.5, 0.3, 0.2, 0.1, 0.05], "val_loss": [0.5, 0.40, 0.301, 0.30, 0.35],
               "accuracy": [0.8, 0.9, 0.95, 0.99, 1.0], "val_accuracy": [0.8, 0.82, 0.82, 0.82, 0.81]}
    assert training_insights(history, best_epoch=4) == [
        "best epoch 4, not the last (5 run)", "validation loss within 1% of its best from epoch 3",
        "17.0-point train/validation accuracy gap at the best epoch: overfitting"]
    assert training_insights({"loss": [1, 0.5]}, 2) == ["best epoch 2 is the last one run: more epochs may still help"]


@pytest.mark.parametrize("train, val, line", [
    (0.9000, 0.9003, "0.0-point train/validation accuracy gap at the best epoch"),  # not -0.0
    (0.9000, 0.9210, "validation accuracy 2.1 points above training accuracy at the best epoch"),
    (0.9210, 0.9000, "2.1-point train/validation accuracy gap at the best epoch")])
def test_the_accuracy_gap_reads_right_whatever_its_sign(train: float, val: float, line: str) -> None:
    history = {"loss": [0.5, 0.4], "accuracy": [0.8, train], "val_accuracy": [0.8, val]}
    assert training_insights(history, best_epoch=2)[-1] == line


def test_report_numbers_never_show_a_negative_zero_and_keep_tiny_values() -> None:
    assert [fmt(v) for v in (-0.0, 0.0, -0.25, -0.0004, 0.00012345, 3)] == [
        "0.0000", "0.0000", "-0.2500", "-0.0004", "0.0001234", "3"]
