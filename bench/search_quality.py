"""Which proposer finds the best points at the users' budget? Best value after 25 and 50 trials.

Two analytic functions (bench/analytic.py), 20 seeds, every arm through the real trial loop
and claim path (records in a real registry, history rebuilt before each proposal): random
search, hyperopt TPE with 20 (its default, what orch ran before ``algorithm``), 10 and 5 random
start-up trials, and Optuna's multivariate TPE with 10 (its default) and 20; each serial and
with 8 workers at once (the liar on; a stand-in trial takes ``--sleep-s``). Random search has no
parallel arm: its points depend on the seed and the trial number alone, so 8 workers draw
exactly the serial arm's points. The best after 25 is read from the first 25 trial numbers of
the 50-trial search, which are the trials a 25-trial search runs (no proposer here knows the
total). Lower is better; prints mean ± standard error over seeds.

    python bench/search_quality.py [--seeds 20] [--trials 25 50] [--workers 8] [--function NAME] [--arm NAME]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hyperopt  # noqa: E402,F401  imported before the workers fork
import optuna  # noqa: E402,F401

from bench.analytic import FUNCTIONS, config_for, new_search, run_workers  # noqa: E402

OPTIMA = {"hartmann6": -3.32237, "branin": 0.397887}
ARMS = {  # name: (algorithm, start-up trials)
    "random search": ("random", 0),
    "hyperopt TPE, 20 start-up": ("tpe", 20),
    "hyperopt TPE, 10 start-up": ("tpe", 10),
    "hyperopt TPE, 5 start-up": ("tpe", 5),
    "Optuna TPE, 10 start-up": ("optuna_tpe", 10),
    "Optuna TPE, 20 start-up": ("optuna_tpe", 20),
}


def losses(function: str, seed: int, trials: int, workers: int, algorithm: str, startup: int,
           sleep_s: float) -> list[float]:
    """Every trial's value of one search, by trial number."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = new_search(Path(tmp) / "registry", "800000", workers)
        config = config_for(function, trials, startup, seed, heartbeat_limit_s=5, algorithm=algorithm)
        return [r["loss"] for r in run_workers(config, paths, function, sleep_s)]


def summary(values: list[float]) -> str:
    return f"{statistics.mean(values):8.4f} ± {statistics.stdev(values) / len(values) ** 0.5:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, nargs="+", default=[25, 50], help="budgets; the largest is run")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--sleep-s", type=float, default=0.2, help="stand-in trial time of the parallel arms")
    parser.add_argument("--function", choices=FUNCTIONS, action="append", help="default: all")
    parser.add_argument("--arm", choices=ARMS, action="append", help="default: all")
    args = parser.parse_args()
    budgets, started = sorted(args.trials), time.monotonic()
    for function in args.function or list(OPTIMA):
        print(f"\n{function} (optimum {OPTIMA[function]}), best value after " + ", ".join(map(str, budgets))
              + f" trials, mean ± s.e. over {args.seeds} seeds", flush=True)
        print(f"  {'proposer':28s} {'workers':>7s}  " + "  ".join(f"{'after ' + str(b):>17s}" for b in budgets))
        for name in args.arm or list(ARMS):
            algorithm, startup = ARMS[name]
            for workers in (1,) if algorithm == "random" else (1, args.workers):
                runs = [losses(function, seed, budgets[-1], workers, algorithm, startup,
                               args.sleep_s if workers > 1 else 0.0) for seed in range(args.seeds)]
                cells = [summary([min(run[:b]) for run in runs]) for b in budgets]
                print(f"  {name:28s} {workers:7d}  " + "  ".join(f"{c:>17s}" for c in cells), flush=True)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
