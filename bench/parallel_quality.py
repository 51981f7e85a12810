"""Do 8 workers find points as good as one? Best value after 64 trials, 20 seeds, two analytic functions.

Arms, all through the real trial loop and claim path (bench/analytic.py): serial TPE (one worker),
8 workers with the liar (trials running elsewhere enter the history at the worst finished loss),
8 workers without it (each proposes as if it were alone), and random search (every trial a start-up
trial). TPE uses hyperopt's default 20 start-up trials. Lower is better; prints mean, standard error
over seeds and standard deviation.

    python bench/parallel_quality.py [--seeds 20] [--trials 64] [--workers 8]
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

from bench.analytic import config_for, new_search, run_workers  # noqa: E402

OPTIMA = {"hartmann6": -3.32237, "branin": 0.397887}


def best(function: str, seed: int, trials: int, workers: int, startup: int, liar: bool, sleep_s: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        paths = new_search(Path(tmp) / "registry", "800000", workers)
        config = config_for(function, trials, startup, seed, heartbeat_limit_s=5)
        return min(r["loss"] for r in run_workers(config, paths, function, sleep_s, liar))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--sleep-s", type=float, default=0.2, help="stand-in trial time of the parallel arms")
    args = parser.parse_args()
    arms = {"serial TPE": (1, 20, True, 0.0), f"{args.workers} workers, liar": (args.workers, 20, True, args.sleep_s),
            f"{args.workers} workers, no liar": (args.workers, 20, False, args.sleep_s),
            "random search": (1, args.trials, True, 0.0)}
    started = time.monotonic()
    for function, optimum in OPTIMA.items():
        print(f"{function} (optimum {optimum}), best after {args.trials} trials, {args.seeds} seeds:")
        for name, (workers, startup, liar, sleep_s) in arms.items():
            values = [best(function, seed, args.trials, workers, startup, liar, sleep_s) for seed in range(args.seeds)]
            sd = statistics.stdev(values)
            print(f"  {name:24s} mean {statistics.mean(values):8.4f} ± {sd / len(values) ** 0.5:.4f} (s.e.)  "
                  f"sd {sd:.4f}  median {statistics.median(values):8.4f}", flush=True)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
