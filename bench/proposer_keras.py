"""The demo search with each proposer: real Keras on the demo data, the same seed and trials.

12 trials of the demo config (its space, 10 epochs at most, early stopping, median pruning) on
``orch demo-data``'s data set, through the local executor, once per proposer: hyperopt TPE,
Optuna TPE (both with 5 random start-up trials, so that 7 of the 12 are modelled) and random
search. Prints each search's best validation loss, the best trial's test F1/AUC, trial-epochs
and wall time. Twelve trials on one data set say little; bench/search_quality.py measures the
proposers on many seeds.

    python bench/proposer_keras.py [--trials 12] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_search import demo_config, run_local  # noqa: E402
from orchestrator.core.attempts import search_records, search_result  # noqa: E402
from orchestrator.launch.synthetic import generate  # noqa: E402

PROPOSERS = {"tpe": {"startup_trials": 5}, "optuna_tpe": {"startup_trials": 5}, "random": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        generate(tmp / "data", files_per_production=10, samples_per_file=250, seed=0)  # orch demo-data's
        for algorithm, extra in PROPOSERS.items():
            config = demo_config(tmp / "data", hp_max_evals=args.trials, algorithm=algorithm, **extra)
            config["resources"]["workers"] = args.workers
            search, wall = run_local(config, tmp, algorithm)
            records = search_records(search)
            result = json.loads(search_result(search).result.read_text())
            print(f"{algorithm:10s} best val_loss {result['best_objective']:.4f} "
                  f"(trial {result['best_trial'] + 1:2d})  "
                  f"test F1 {result['test']['f1']:.4f}  AUC {result['test']['auc']:.4f}  trial-epochs "
                  f"{sum(r['epochs_run'] for r in records):3d} ({sum(r['status'] == 'pruned' for r in records)} "
                  f"pruned)  wall {wall:5.0f} s", flush=True)


if __name__ == "__main__":
    main()
