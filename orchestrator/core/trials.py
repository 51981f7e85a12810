"""What a trial's record says: the status vocabulary, and the objective every trial is scored by.

A record's ``status`` is one of ``OK``, ``PRUNED`` (stopped early by the pruning rule, with the value it
had) and ``FAILED`` (no value). ``loss`` is what the search minimizes: the objective's value, negated when
higher is better. The job, status, the report and compare all read these names from here.
"""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
PRUNED = "pruned"
FAILED = "failed"
RESULTS = frozenset({OK, PRUNED})  # trial statuses with an objective; FAILED has none
STATUSES = frozenset({*RESULTS, FAILED})

MAXIMIZED = frozenset({"val_accuracy", "val_auc", "val_f1"})  # objectives where higher is better
MONITORS = ("val_loss", "val_accuracy", "val_auc")  # the objectives Keras reports after every epoch


@dataclass(frozen=True)
class Objective:
    """A metric by name, with the direction in which it is better."""

    name: str

    def __str__(self) -> str:
        return self.name

    @property
    def maximized(self) -> bool:
        return self.name in MAXIMIZED

    def loss(self, value: float) -> float:
        """What the search minimizes for a value of this objective."""
        return -value if self.maximized else value

    def better_than(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``."""
        return self.loss(a) < self.loss(b)
