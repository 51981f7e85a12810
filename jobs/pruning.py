"""The pruning rules: stop a trial early when its curve is worse than those of the search's other trials.

Curves are *best-so-far losses* per epoch (the objective per epoch, negated when it is maximized,
then the running minimum), so lower is better everywhere. Pure functions: the trial process
(``jobs.trial``) reads the curves of every other trial of the search once per epoch from their
progress files and asks a rule; the same curves always give the same decision.

``median``: once ``warmup_trials`` trials have finished, a trial at epoch ``e >= min_epochs`` stops
when its best so far is worse than the median of the other trials' best so far at epoch ``e``
(finished trials that stopped before ``e`` count with their last value; running ones only once
they reached ``e``). ``halving`` (asynchronous successive halving, as in ASHA): rungs at
``min_epochs × reduction_factor^k``; at a rung, after the warm-up, a trial goes on only if it is in
the top ``1/reduction_factor`` of the trials that reached that rung (itself included; at least
one goes on, so the first trial at a rung always does). Ties go on.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from orchestrator.core.config import Pruning


@dataclass(frozen=True)
class Curve:
    """Another trial's best-so-far loss after each epoch it ran (index 0: epoch 1)."""

    best: tuple[float, ...]
    finished: bool


def best_so_far(losses: list[float]) -> list[float]:
    """The running minimum of per-epoch losses (a NaN epoch keeps the best before it)."""
    out: list[float] = []
    for loss in losses:
        previous = out[-1] if out else float("inf")
        out.append(min(previous, loss) if loss == loss else previous)
    return out


def decide(rule: Pruning, mine: list[float], others: list[Curve]) -> str | None:
    """Why the trial whose best-so-far curve is ``mine`` (one value per epoch run) stops now, or None
    when it goes on."""
    epoch = len(mine)
    if rule.method == "none" or epoch < rule.min_epochs:
        return None
    if sum(1 for c in others if c.finished) < rule.warmup_trials:
        return None
    if rule.method == "median":
        return _median(mine, others, epoch)
    return _halving(mine, others, epoch, rule.min_epochs, rule.reduction_factor)


def _at(curve: Curve, epoch: int, carry: bool) -> float | None:
    """A curve's value at ``epoch``; its last value after it stopped when ``carry``."""
    if len(curve.best) >= epoch:
        return curve.best[epoch - 1]
    return curve.best[-1] if carry and curve.finished and curve.best else None


def _median(mine: list[float], others: list[Curve], epoch: int) -> str | None:
    values = [v for v in (_at(c, epoch, carry=True) for c in others) if v is not None]
    if not values:
        return None
    median = statistics.median(values)
    if mine[-1] > median:
        return f"best loss {mine[-1]:.4g} at epoch {epoch} worse than the median {median:.4g} of {len(values)} trials"
    return None


def rungs(min_epochs: int, factor: int, epochs: int) -> list[int]:
    """The epochs at which successive halving decides, up to ``epochs``."""
    out, rung = [], min_epochs
    while rung <= epochs:
        out.append(rung)
        rung *= factor
    return out


def _halving(mine: list[float], others: list[Curve], epoch: int, min_epochs: int, factor: int) -> str | None:
    if epoch not in rungs(min_epochs, factor, epoch):
        return None
    reached = [v for v in (_at(c, epoch, carry=False) for c in others) if v is not None]
    keep = max(1, (len(reached) + 1) // factor)
    better = sum(1 for v in reached if v < mine[-1])
    if better >= keep:
        return (f"best loss {mine[-1]:.4g} at rung {epoch} not in the top {keep} of {len(reached) + 1} trials "
                f"({better} better)")
    return None
