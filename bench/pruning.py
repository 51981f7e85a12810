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

    python bench/pruning.py [--files 12] [--trials 20] [--epochs 30] [--workers 1] [--seeds 1]
                            [--rules none,median,halving]

With ``--seeds N`` the three searches run again with ``random_seed`` 42, 43, ... (another split and other
trial seeds), and each rule's ratios to ``none`` of the same seed are averaged: one seed's best
validation loss moves by several per cent with the split and the proposals alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def run_seed(tmp: Path, seed: int, rules: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """One search per rule with ``random_seed`` = ``seed`` (the split and every trial's seed): their figures."""
    rows = {}
    for name in rules:
        config = demo_config(tmp / "data", hp_max_evals=args.trials, epochs=args.epochs, startup_trials=5,
                             pruning=RULES[name], early_stopping={"monitor": "val_loss", "patience": 10,
                                                                  "restore_best_weights": True}, batch_size=128)
        config["model_parameters"]["space_options"].update(n_filters=[4, 8], n_dense_units=[16, 32])
        config["dataset_parameters"]["random_seed"] = seed
        config["resources"]["workers"] = args.workers
        search, wall = run_local(config, tmp, f"{name}-{seed}")
        records = search_records(search)
        result = json.loads(search_result(search).result.read_text())
        rows[name] = {"epochs": sum(r["epochs_run"] for r in records), "wall": wall,
                      "pruned": sum(r["status"] == "pruned" for r in records),
                      "best": result["best_objective"], "f1": result["test"]["f1"], "auc": result["test"]["auc"]}
        r = rows[name]
        print(f"seed {seed} {name:8s} trial-epochs {r['epochs']:4d} ({r['pruned']:2d} pruned)  wall {wall:6.0f} s  "
              f"best val_loss {r['best']:.4f}  test F1 {r['f1']:.4f}  AUC {r['auc']:.4f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12, help="files per production (the demo has 10)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1, help="repeat with random_seed 42, 43, ...: each rule is "
                        "compared with none on the same split and seeds, and the ratios averaged")
    parser.add_argument("--rules", default="none,median,halving", help="which rules (none is always run)")
    args = parser.parse_args()
    rules = ["none", *[r for r in args.rules.split(",") if r in RULES and r != "none"]]
    ratios: dict[str, list[tuple[float, float]]] = {name: [] for name in rules[1:]}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        generate(tmp / "data", files_per_production=args.files, samples_per_file=250, seed=3)
        for seed in range(42, 42 + args.seeds):
            rows = run_seed(tmp, seed, rules, args)
            base = rows["none"]
            for name in rules[1:]:
                r = rows[name]
                ratios[name].append((r["epochs"] / base["epochs"], r["best"] / base["best"]))
                print(f"seed {seed} {name} / none: trial-epochs {r['epochs'] / base['epochs']:.2f} "
                      f"({100 * (1 - r['epochs'] / base['epochs']):.0f} % fewer), wall {r['wall'] / base['wall']:.2f}, "
                      f"best val_loss {r['best'] / base['best']:.3f}, test F1 {r['f1'] - base['f1']:+.4f}, "
                      f"AUC {r['auc'] - base['auc']:+.4f}", flush=True)
    for name, pairs in ratios.items():
        epochs = [e for e, _ in pairs]
        best = [b for _, b in pairs]
        print(f"{name} / none over {len(pairs)} seeds: trial-epochs {statistics.mean(epochs):.2f} "
              f"({100 * (1 - statistics.mean(epochs)):.0f} % fewer), best val_loss {statistics.mean(best):.3f}"
              + (f" (sd {statistics.stdev(best):.3f}, per seed {', '.join(f'{b:.3f}' for b in best)})"
                 if len(best) > 1 else ""))


if __name__ == "__main__":
    main()
