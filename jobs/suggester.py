"""The proposers: the point of each trial, from a history rebuilt from records.

``model_parameters.algorithm`` picks one: hyperopt's TPE (``tpe``), Optuna's multivariate TPE
(``optuna_tpe``) or random search (``random``). All three read the same history and give a
point as raw values that ``orchestrator.core.space`` reads one way, so the records, resume and
parallel workers do not depend on the choice.

The history is every finished trial of the search (all workers, all attempts) plus the trials
other workers are running right now. For hyperopt, those enter as *pending* with a constant
liar value, the worst loss finished so far, so that workers proposing at the same moment are
pushed apart instead of all choosing the same promising point (the constant-liar heuristic of
Ginsbourger et al. for parallel Bayesian optimization); before any trial finished ok there is
no liar, and pending trials are left out. Optuna gets them as RUNNING trials, which its own
constant liar ranks with the worst. A pruned trial enters with the loss it had when it was
stopped. A failed trial, or one whose loss is not finite, counts as the worst result: hyperopt
gives a failure an infinite loss, and Optuna gets it as a trial at +inf, so that both steer
away from it and count it toward the start-up.

Trial ``n`` is proposed with a seed made of ``(random_seed, n)``: the same history (finished
and pending trials) gives the same point. Random search reads no history: its point is a
function of the seed and ``n`` alone.

Both TPEs draw their first ``startup_trials`` points at random, counting the pending trials
(hyperopt's ``n_startup_jobs`` counts them once they entered its history; Optuna's
``n_startup_trials``, which counts finished trials only, is lowered by their number).
Optuna is imported only when its proposer is built: it is an extra of the node side.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from orchestrator.core.config import Config, require_proposer
from orchestrator.core.trials import RESULTS

Pending = list[tuple[int, dict[str, Any]]]  # (trial number, raw values) of trials running elsewhere


class Suggester:
    """Proposals for one search, from a history given as records; subclasses say how."""

    def __init__(self, config: Config) -> None:
        self.space = config.model.space
        self.seed = config.dataset.random_seed
        self.startup = config.model.startup_trials
        self.history: list[tuple[int, dict[str, Any], float | None]] = []  # trial, raw values, loss (None: failed)

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

    def suggest(self, tid: int, pending: Pending = ()) -> tuple[dict[str, Any], dict[str, Any]]:
        """The raw values (choice indices) and the plain params of trial ``tid``, with ``pending``
        trials running elsewhere taken into account."""
        if not self.space.params:
            return {}, {}
        vals = self.propose(tid, list(pending))
        return vals, self.space.point(vals)

    def propose(self, tid: int, pending: Pending) -> dict[str, Any]:
        """The raw values of trial ``tid``."""
        raise NotImplementedError


class HyperoptTPE(Suggester):
    """hyperopt's TPE, fed hyperopt trial documents made once per finished trial."""

    def __init__(self, config: Config) -> None:
        from hyperopt import base

        super().__init__(config)
        self.domain = base.Domain(lambda _: 0.0, self.space.to_hyperopt())
        self.docs: dict[tuple[Any, ...], dict[str, Any]] = {}  # hyperopt's trial documents, made once each

    def trial_seed(self, tid: int) -> int:
        """The seed of trial ``tid``'s proposal (hyperopt mixes it itself, in numpy's ``default_rng``)."""
        return self.seed * 100_003 + tid

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

    def _trials(self, pending: Pending) -> Any:
        """hyperopt's ``Trials`` holding the history and, at the liar value, ``pending``."""
        from hyperopt import Trials

        liar = self.liar()
        docs = [*self.history, *((n, vals, liar) for n, vals in pending if liar is not None)]
        trials = Trials()
        if docs:
            trials.insert_trial_docs([self._doc(*d) for d in docs])
            trials.refresh()
        return trials

    def propose(self, tid: int, pending: Pending) -> dict[str, Any]:
        from hyperopt import tpe

        return raw_values(tpe.suggest([tid], self.domain, self._trials(pending), seed=self.trial_seed(tid),
                                      n_startup_jobs=self.startup)[0])


class RandomSearch(HyperoptTPE):
    """Every point drawn at random (hyperopt's ``rand``, as TPE's start-up trials), whatever the history."""

    def propose(self, tid: int, pending: Pending) -> dict[str, Any]:
        from hyperopt import Trials, rand

        return raw_values(rand.suggest([tid], self.domain, Trials(), seed=self.trial_seed(tid))[0])


def raw_values(doc: dict[str, Any]) -> dict[str, Any]:
    """The raw values of a trial document hyperopt proposed, as plain Python numbers."""
    return {k: v[0].item() if hasattr(v[0], "item") else v[0] for k, v in doc["misc"]["vals"].items() if v}


class OptunaTPE(Suggester):
    """Optuna's multivariate TPE in ask/tell form: a study in memory, rebuilt from the history before
    each proposal (no Optuna storage), with its constant liar over the pending trials."""

    def __init__(self, config: Config) -> None:
        require_proposer(config)
        import optuna

        super().__init__(config)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study made
        self.distributions = self.space.to_optuna()

    def propose(self, tid: int, pending: Pending) -> dict[str, Any]:
        import optuna
        from optuna.trial import TrialState, create_trial

        # Optuna seeds a Mersenne Twister, whose first draws are alike for nearby seeds (0 and 3 give
        # almost the same start-up point): the seed of trial n is mixed by a SeedSequence
        seed = int(np.random.SeedSequence([self.seed, tid]).generate_state(1)[0])
        # Optuna's start-up counts finished trials only: with 8 workers, 18 of the first 25 trials would
        # be random. The pending trials count too, so that the first startup_trials are, whatever the workers
        sampler = optuna.samplers.TPESampler(n_startup_trials=max(0, self.startup - len(pending)), multivariate=True,
                                             constant_liar=True, seed=seed)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        for _, vals, loss in self.history:  # a failure, or a loss that is not finite, as the worst result
            value = loss if loss is not None and math.isfinite(loss) else math.inf
            study.add_trial(create_trial(value=value, params=vals, distributions=self.distributions))
        for _, vals in pending:
            study.add_trial(create_trial(state=TrialState.RUNNING, params=vals, distributions=self.distributions))
        return study.ask(self.distributions).params


PROPOSERS: dict[str, type[Suggester]] = {"tpe": HyperoptTPE, "optuna_tpe": OptunaTPE, "random": RandomSearch}


def suggester_for(config: Config) -> Suggester:
    """The proposer ``model_parameters.algorithm`` names."""
    return PROPOSERS[config.model.algorithm](config)
