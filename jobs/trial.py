"""One trial (or the final test evaluation) in its own process: ``python -m jobs.trial MODE JOB_DIR N``.

``trial``: read ``trials/N/request.json``, map the search's cached train/val splits, build
and fit the model, write ``history.json``, ``model.keras`` and ``result.json``
(status ``ok`` with validation metrics, or ``failed`` with the reason, e.g. a NaN
loss). ``final`` (N is then a model file): load that model, predict the test split,
write ``final.json`` (test metrics, ROC points) and ``final_scores.npz`` for the job
to turn into artifacts.
Logs one line per epoch; no progress bars.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from jobs.data import open_split
from jobs.metrics import classification, roc_curve
from jobs.pruning import Curve, best_so_far, decide
from orchestrator.core import claims, jobenv
from orchestrator.core.attempts import SUMMARY_CHARS, search_of, search_records
from orchestrator.core.config import Config
from orchestrator.core.config_file import load_config
from orchestrator.core.files import (
    append_json_line,
    open_file,
    write_atomic,
    write_json_atomic,
)
from orchestrator.core.records import LineTails, read_json
from orchestrator.core.registry import JobPaths
from orchestrator.core.trials import FAILED, MONITORS, OK, PRUNED, Objective

MAX_ROC_POINTS = 1000
PULSE_S = 5.0  # how often, at most, a training trial touches its pulse file


def setup_threads(threads: int) -> None:
    """TensorFlow's threads for ``threads`` cores: intra-op = cores, inter-op = 2 (1 on one core). Where
    TensorFlow already ran in this process (a second ``orch submit --debug`` in one Python), they stay
    as they were set then."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # "cannot be modified after initialization"
        pass


def epoch_logger(trial: int, epochs: int) -> Any:
    """A callback printing one line per epoch."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        steps = 0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            EpochLine.steps = self.params.get("steps") or 0
            shown = " ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()) if k != "learning_rate")
            print(f"trial {trial + 1} epoch {epoch + 1}/{epochs}: {shown} ({time.monotonic() - self.started:.1f} s)",
                  flush=True)

    return EpochLine()


def progress_callback(paths: JobPaths, tid: int, config: Config) -> Any:
    """A callback appending each epoch's validation metrics to the trial's progress file and, with
    ``model_parameters.pruning``, stopping the trial when the rule says so (``jobs.pruning``).
    The other trials' curves are read once per epoch. It touches the trial's pulse file at most every
    ``PULSE_S`` as batches finish (training, validation and the scoring after ``fit``, where it is
    passed too), so that the job can tell a slow trial from a stuck one (``jobs.thrash``)."""
    import keras

    rule = config.model.pruning
    objective = config.model.objective
    metric = objective if objective.name in MONITORS else Objective("val_loss")  # Keras reports these per epoch
    tails = LineTails()

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.losses: list[float] = []
            self.pruned: str | None = None
            os.close(open_file(paths.pulse(tid), os.O_WRONLY | os.O_CREAT, "the trial's pulse file"))
            self.pulsed = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if time.monotonic() - self.pulsed >= PULSE_S:  # a batch finished: the trial is not stuck
                os.utime(paths.pulse(tid), follow_symlinks=False)
                self.pulsed = time.monotonic()

        on_test_batch_end = on_predict_batch_end = on_train_batch_end  # validation and the trial's scoring too

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            value = float(logs.get(metric.name, float("nan")))
            self.losses.append(metric.loss(value))
            best = best_so_far(self.losses)
            append_json_line(paths.progress(tid), {
                "trial": tid, "epoch": epoch + 1, "metric": metric.name, "value": value, "best_loss": best[-1],
                **{k: float(v) for k, v in logs.items() if k.startswith("val_")}})
            if rule.method != "none":
                self.pruned = decide(rule, best, other_curves(paths, tid, tails))
                if self.pruned:
                    print(f"trial {tid + 1} pruned at epoch {epoch + 1}: {self.pruned}", flush=True)
                    self.model.stop_training = True

    return Progress()


def other_curves(paths: JobPaths, tid: int, tails: LineTails) -> list[Curve]:
    """The best-so-far curves of the search's other trials: finished ones (their records) and those
    running now (current claims), from their progress files."""
    records = {r["trial"]: r["job_id"] for r in search_records(paths, SUMMARY_CHARS)}
    running = {n: owner["job_id"] for n, owner in
               claims.running(claims.current(search_of(paths).claims), set(records)).items()}
    return [Curve(tuple(line["best_loss"] for line in tails.read(JobPaths(paths.root, job_id).progress(n))), finished)
            for trials, finished in ((records, True), (running, False)) for n, job_id in trials.items() if n != tid]


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None) -> Any:
    """Batches gathered from a memory-mapped split: reshuffled every epoch with a seed, in
    stored order without one (for validation and prediction, so scores align with labels).

    Feeding ``fit`` arrays would make Keras copy the whole split into a tensor while
    the mapped pages stay resident too (~1.7× the data, measured); batches keep the
    trial at the mapped pages plus one batch."""
    import keras

    class MappedBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=2, use_multiprocessing=False)  # threads prefetch while TF computes
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(labels)) if seed is None else self.rng.permutation(len(labels))

        def __len__(self) -> int:
            return -(-len(labels) // batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = np.sort(self.order[index * batch_size:(index + 1) * batch_size])  # sorted: sequential reads
            return np.asarray(images[rows]), np.asarray(labels[rows])

        def on_epoch_end(self) -> None:
            if seed is not None:
                self.order = self.rng.permutation(len(labels))

    return MappedBatches()


def best_epoch(history: dict[str, list[float]], config: Config) -> int:
    """0-based epoch of the best monitored value (early stopping's monitor; else val_loss)."""
    es = config.model.early_stopping
    monitor = Objective(es.monitor if es else "val_loss")
    values = np.asarray(history[monitor.name], dtype=float)
    if np.isnan(values).all():
        return len(values) - 1
    return int(np.nanargmax(values) if monitor.maximized else np.nanargmin(values))


def run_trial(paths: JobPaths, config: Config, tid: int) -> dict[str, Any]:
    import keras

    from jobs.model import build_model

    request = read_json(paths.request(tid))
    point = request["point"]
    keras.utils.set_random_seed(request["seed"])
    cache = search_of(paths).cache
    x_train, y_train = open_split(cache, "train")
    x_val, y_val = open_split(cache, "val")
    m = config.model
    model = build_model(point, m.input_shape, math.ceil(len(y_train) / point["batch_size"]))
    logger = epoch_logger(tid, m.epochs)
    progress = progress_callback(paths, tid, config)
    callbacks = [logger, progress, keras.callbacks.TerminateOnNaN()]
    if m.early_stopping:
        es = m.early_stopping
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights, mode="max" if Objective(es.monitor).maximized else "min"))
    fit = model.fit(batches(x_train, y_train, point["batch_size"], request["seed"]), epochs=m.epochs,
                    validation_data=batches(x_val, y_val, m.batch_size, None), callbacks=callbacks,
                    verbose=0)
    history = {k: [float(v) for v in values] for k, values in fit.history.items() if k != "learning_rate"}
    write_json_atomic(paths.trial_history(tid), history)
    epochs_run = len(history["loss"])
    if not all(math.isfinite(v) for v in history["loss"]):
        bad = next(i for i, v in enumerate(history["loss"]) if not math.isfinite(v))
        return {"status": FAILED, "reason": f"NaN loss at epoch {bad + 1}", "epochs_run": epochs_run}
    val_loss, _, _ = model.evaluate(batches(x_val, y_val, m.batch_size, None), verbose=0, callbacks=[progress])
    scores = model.predict(batches(x_val, y_val, m.batch_size, None), verbose=0, callbacks=[progress]).ravel()
    if not np.isfinite(scores).all():
        return {"status": FAILED, "reason": "non-finite predictions", "epochs_run": epochs_run}
    val = classification(np.asarray(y_val), scores)
    best = best_epoch(history, config)
    write_atomic(paths.trial_model(tid), model.save)
    pruned = {"status": PRUNED, "reason": progress.pruned} if progress.pruned else {"status": OK}
    return {**pruned, "epochs_run": epochs_run, "best_epoch": best + 1, "steps_per_epoch": logger.steps,
            "train_val_gap": round(history["accuracy"][best] - history["val_accuracy"][best], 5),
            "metrics": {"val_loss": float(val_loss), "val_accuracy": val["accuracy"], "val_auc": val["auc"],
                        "val_f1": val["f1"], "val_precision": val["precision"], "val_recall": val["recall"]}}


def run_final(paths: JobPaths, config: Config, model_file: Path) -> dict[str, Any]:
    import keras

    model = keras.models.load_model(model_file)
    x_test, y_test = open_split(search_of(paths).cache, "test")
    scores = model.predict(x_test, batch_size=config.model.batch_size, verbose=0).ravel()
    labels = np.asarray(y_test)
    write_atomic(paths.final_scores,
                 lambda tmp: np.savez(tmp, labels=labels, scores=scores.astype(np.float32)))
    fpr, tpr, thresholds = roc_curve(labels, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), MAX_ROC_POINTS)).astype(int))
    return {"test": classification(labels, scores),
            "roc_curve": {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(),
                          "thresholds": [t if math.isfinite(t) else None for t in thresholds[keep].tolist()]}}


def run(mode: str, paths: JobPaths, what: str) -> None:
    """Trial number ``what`` of the job of ``paths`` (``mode`` "trial": its ``result.json``), or the final
    evaluation of the model file ``what`` (``mode`` "final": the job's ``final.json``)."""
    config = load_config(paths.config, submitted=jobenv.submitted_configs())
    if mode == "trial":
        result = run_trial(paths, config, int(what))
        write_json_atomic(paths.trial_result(int(what)), {**result, "threads": jobenv.trial_threads()})
    else:
        write_json_atomic(paths.final_record, run_final(paths, config, Path(what)))


def main(argv: list[str]) -> int:
    """``trial JOB_DIR N`` or ``final JOB_DIR MODEL_FILE``."""
    mode, job_dir, what = argv
    setup_threads(jobenv.trial_threads())
    run(mode, JobPaths.from_dir(Path(job_dir)), what)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
