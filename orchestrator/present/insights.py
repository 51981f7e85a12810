"""Insights: what a search's records say, in the words of the users' notes (the report's observations):
"best result found very early (trial 2/10)", "validation loss plateaued at epoch 5-6",
"17-point train/valid gap: overfitting", "best epoch 27, not the last"."""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.core.trials import FAILED, OK, PRUNED

OVERFIT_POINTS = 5.0  # train − validation accuracy at the best epoch above this is called overfitting
PLATEAU = 0.01  # within 1 % of the best validation loss counts as the plateau


def improvements(records: list[dict[str, Any]]) -> list[int]:
    """Trial numbers (0-based) at which the best loss so far improved, in order."""
    best, found = float("inf"), []
    for r in records:
        if r["status"] == OK and r["loss"] < best:
            best = r["loss"]
            found.append(r["trial"])
    return found


def search_insights(records: list[dict[str, Any]], total: int, epochs: int | None = None) -> list[str]:
    """What the trial records say, in sentences; ``epochs`` (the most a trial trains) counts what
    pruning saved."""
    lines = []
    better = improvements(records)
    if better:
        best = better[-1]
        position = best + 1
        when = "very early " if position <= max(2, total // 5) else ("late " if position > 0.8 * total else "")
        lines.append(f"best result found {when}(trial {position}/{total})")
        after = [r for r in records if r["trial"] > best]
        if after:
            lines.append(f"no improvement in the remaining {len(after)} trials")
        if len(better) > 1:
            times = "once" if len(better) == 2 else f"{len(better) - 1} times"
            lines.append(f"the best so far improved {times} after trial {better[0] + 1}, last at trial {position}")
    pruned = [r for r in records if r["status"] == PRUNED]
    if pruned and epochs:
        saved = sum(max(0, epochs - (r.get("epochs_run") or epochs)) for r in pruned)
        lines.append(f"{len(pruned)} of {len(records)} trials pruned, saving up to {saved} epochs")
    failed = [r for r in records if r["status"] == FAILED]
    if failed:
        reasons = Counter(r.get("reason", "unknown") for r in failed)
        lines.append(f"{len(failed)} of {len(records)} trials failed: "
                     + "; ".join(f"{why} ({n})" for why, n in reasons.most_common()))
    if len(records) < total:
        lines.append(f"{total - len(records)} of {total} trials still to run")
    return lines


def training_insights(history: dict[str, list[float]], best_epoch: int) -> list[str]:
    """About the best trial's training; ``best_epoch`` is 1-based."""
    lines = []
    last = len(history["loss"])
    if best_epoch == last:
        lines.append(f"best epoch {best_epoch} is the last one run: more epochs may still help")
    else:
        lines.append(f"best epoch {best_epoch}, not the last ({last} run)")
    val = history.get("val_loss") or []
    if val:
        floor = min(val)
        plateau = next(i for i, v in enumerate(val) if v <= floor * (1 + PLATEAU)) + 1
        lines.append(f"validation loss within {PLATEAU:.0%} of its best from epoch {plateau}")
    if "accuracy" in history and "val_accuracy" in history:
        gap = round(100 * (history["accuracy"][best_epoch - 1] - history["val_accuracy"][best_epoch - 1]), 1) + 0.0
        if gap < 0:  # + 0.0 above: a gap that rounds to zero from below is 0.0, not -0.0
            lines.append(f"validation accuracy {-gap:.1f} points above training accuracy at the best epoch")
        else:
            verdict = ": overfitting" if gap > OVERFIT_POINTS else ""
            lines.append(f"{gap:.1f}-point train/validation accuracy gap at the best epoch{verdict}")
    return lines
