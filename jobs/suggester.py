"""The proposer: hyperopt TPE driven one trial at a time over a history rebuilt from records.

The history is every finished trial of the search (all workers, all attempts) plus
the trials other workers are running right now. Those enter as *pending* with a
constant liar value, the worst loss finished so far, so that workers proposing at
the same moment are pushed apart instead of all choosing the same promising point
(the constant-liar heuristic of Ginsbourger et al. for parallel Bayesian optimization).
Before any trial finished ok there is no liar, and pending trials are left out.

Trial ``n`` is proposed with the seed ``(random_seed, n)``: the same history gives the
same point. A pruned trial enters with the loss it had when it was stopped. hyperopt draws its
first ``startup_trials`` points at random (``n_startup_jobs``), counting the pending trials that
entered the history.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator.attempts import RESULTS
from orchestrator.config import Config


class Suggester:
    """Proposals for one search, from a history given as records."""

    def __init__(self, config: Config) -> None:
        from hyperopt import base

        self.space = config.model.space
        self.expr = self.space.to_hyperopt()
        self.domain = base.Domain(lambda _: 0.0, self.expr)
        self.seed = config.dataset.random_seed
        self.startup = config.model.startup_trials
        self.history: list[tuple[int, dict[str, Any], float | None]] = []  # trial, raw values, loss (None: failed)
        self.docs: dict[tuple[Any, ...], dict[str, Any]] = {}  # hyperopt's trial documents, made once each

    def add_all(self, records: list[dict[str, Any]]) -> None:
        """Put finished trials into the history."""
        self.history += [(r["trial"], r["vals"], r["loss"] if r["status"] in RESULTS else None) for r in records]

    def reset(self, records: list[dict[str, Any]]) -> None:
        """Make the history exactly ``records`` (a worker's view of its search before each proposal)."""
        self.history = []
        self.add_all(records)

    def liar(self) -> float | None:
        """The loss pending trials enter with: the worst finished loss (None before any)."""
        losses = [loss for _, _, loss in self.history if loss is not None and math.isfinite(loss)]
        return max(losses) if losses else None

    def _doc(self, tid: int, vals: dict[str, Any], loss: float | None) -> dict[str, Any]:
        """hyperopt's document of one finished (or pending, at the liar's loss) trial."""
        from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK, Trials

        key = (tid, loss, tuple(sorted(vals.items())))
        if key not in self.docs:
            result = {"status": STATUS_FAIL} if loss is None else {"status": STATUS_OK, "loss": loss}
            misc = {"tid": tid, "cmd": self.domain.cmd, "workdir": None, "idxs": {k: [tid] for k in vals},
                    "vals": {k: [v] for k, v in vals.items()}}
            [doc] = Trials().new_trial_docs([tid], [None], [result], [misc])
            doc["state"] = JOB_STATE_DONE
            self.docs[key] = doc
        return self.docs[key]

    def _trials(self, pending: list[tuple[int, dict[str, Any]]]) -> Any:
        """hyperopt's ``Trials`` holding the history and, at the liar value, ``pending``."""
        from hyperopt import Trials

        liar = self.liar()
        docs = [*self.history, *((n, vals, liar) for n, vals in pending if liar is not None)]
        trials = Trials()
        if docs:
            trials.insert_trial_docs([self._doc(*d) for d in docs])
            trials.refresh()
        return trials

    def suggest(self, tid: int, pending: list[tuple[int, dict[str, Any]]] = ()) -> tuple[dict[str, Any],
                                                                                          dict[str, Any]]:
        """The raw hyperopt values (choice indices) and the plain params of trial ``tid``, with
        ``pending`` (trial number, raw values) of trials running elsewhere entered at the liar value."""
        from hyperopt import tpe

        if not self.space.params:
            return {}, {}
        doc = tpe.suggest([tid], self.domain, self._trials(list(pending)), seed=self.seed * 100_003 + tid,
                          n_startup_jobs=self.startup)[0]
        vals = {k: v[0].item() if hasattr(v[0], "item") else v[0] for k, v in doc["misc"]["vals"].items() if v}
        return vals, self.params(vals)

    def params(self, vals: dict[str, Any]) -> dict[str, Any]:
        """The plain params of raw hyperopt values."""
        from hyperopt import space_eval

        return self.space.plain(space_eval(self.expr, vals))
