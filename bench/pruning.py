"""The same search with no pruning, median pruning and successive halving: epochs, time, quality.

20 trials, 30 epochs at most, early stopping as in the users' configs (val_loss, patience 10), TPE
with 5 start-up trials, the same seed and data for all three, on synthetic data bigger than the
demo's (`--files` per production, ~250 samples each; the demo has 10). The search space is the
demo's with thinner layers (4 or 8 filters, 16 or 32 dense units, batch 128), so that the 60 trials
take about half an hour on 2 cores; the demo's own widths take about 15 s per epoch here on this
data, 2 hours for the bench. Median: after 2 finished trials, from epoch 2; halving: rungs at 2, 6,
18 epochs, the top third goes on, after 2 finished trials. Real Keras through the local executor,
`--workers` workers per search (each on its share of the cores). Prints total trial-epochs, wall time,
the best validation loss and the best trial's test F1/AUC for each, and their ratios to `none`.

    python bench/pruning.py [--files 12] [--trials 20] [--epochs 30] [--workers 1]
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

RULES = {"none": {"method": "none"},
         "median": {"method": "median", "min_epochs": 2, "warmup_trials": 2},
         "halving": {"method": "halving", "min_epochs": 2, "warmup_trials": 2, "reduction_factor": 3}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12, help="files per production (the demo has 10)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        generate(tmp / "data", files_per_production=args.files, samples_per_file=250, seed=3)
        for name, rule in RULES.items():
            config = demo_config(tmp / "data", hp_max_evals=args.trials, epochs=args.epochs, startup_trials=5,
                                 pruning=rule, early_stopping={"monitor": "val_loss", "patience": 10,
                                                               "restore_best_weights": True}, batch_size=128)
            config["model_parameters"]["space_options"].update(n_filters=[4, 8], n_dense_units=[16, 32])
            config["resources"]["workers"] = args.workers
            search, wall = run_local(config, tmp, name)
            records = search_records(search)
            result = json.loads(search_result(search).result.read_text())
            rows[name] = {"epochs": sum(r["epochs_run"] for r in records), "wall": wall,
                          "pruned": sum(r["status"] == "pruned" for r in records),
                          "best": result["best_objective"], "f1": result["test"]["f1"], "auc": result["test"]["auc"]}
            r = rows[name]
            print(f"{name:8s} trial-epochs {r['epochs']:4d} ({r['pruned']:2d} pruned)  wall {wall:6.0f} s  "
                  f"best val_loss {r['best']:.4f}  test F1 {r['f1']:.4f}  AUC {r['auc']:.4f}", flush=True)
    base = rows["none"]
    for name in ("median", "halving"):
        r = rows[name]
        print(f"{name} / none: trial-epochs {r['epochs'] / base['epochs']:.2f} ({100 * (1 - r['epochs'] / base['epochs']):.0f} % "
              f"fewer), wall {r['wall'] / base['wall']:.2f}, best val_loss {r['best'] / base['best']:.3f}, "
              f"test F1 {r['f1'] - base['f1']:+.4f}, AUC {r['auc'] - base['auc']:+.4f}")


if __name__ == "__main__":
    main()
