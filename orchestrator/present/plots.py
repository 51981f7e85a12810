"""The report's figures as PNG bytes. The only module that imports matplotlib (lazily, headless)."""

from __future__ import annotations

import io
from typing import Any, Sequence

from orchestrator.core.trials import FAILED, OK, PRUNED, Objective


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    return buffer.getvalue()


def _integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def objective_per_trial(records: list[dict[str, Any]], objective: Objective) -> bytes:
    """The objective of every ok trial, with the best-so-far line; pruned trials at the value they were
    stopped with, failed trials marked at the bottom."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ok = [r for r in records if r["status"] == OK]
    ax.plot([r["trial"] + 1 for r in ok], [r["objective"] for r in ok], "o", label="trial")
    best, steps = None, []
    for r in ok:
        if best is None or objective.better_than(r["objective"], best):
            best = r["objective"]
        steps.append((r["trial"] + 1, best))
    if steps:
        ax.step(*zip(*steps), where="post", label="best so far")
    pruned = [r for r in records if r["status"] == PRUNED]
    if pruned:
        ax.plot([r["trial"] + 1 for r in pruned], [r["objective"] for r in pruned], "v", color="grey",
                label="pruned")
    failed = [r["trial"] + 1 for r in records if r["status"] == FAILED]
    if failed and ok:
        ax.plot(failed, [min(r["objective"] for r in ok)] * len(failed), "x", color="red", label="failed")
    ax.set(xlabel="trial", ylabel=objective.name, title=f"{objective} per trial")
    _integer_ticks(ax)
    ax.legend()
    return _png(fig)


def keys_vs_objective(records: list[dict[str, Any]], keys: Sequence[str], name: str) -> bytes:
    """One panel per searched key: its value against the objective."""
    plt = _pyplot()
    ok = [r for r in records if r["status"] == OK]
    cols = min(3, max(1, len(keys)))
    rows = -(-max(1, len(keys)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        values = [r["params"][key] for r in ok]
        if any(isinstance(v, str) for v in values):
            labels = sorted({str(v) for v in values})
            values = [labels.index(str(v)) for v in values]
            ax.set_xticks(range(len(labels)), labels)
        ax.plot(values, [r["objective"] for r in ok], "o", alpha=0.7)
        if key == "learning_rate" and all(v > 0 for v in values):
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a narrow range overlap
        ax.set(xlabel=key, ylabel=name)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return _png(fig)


def training_curves(history: dict[str, list[float]], best_epoch: int) -> bytes:
    """Loss and accuracy of the best trial per epoch; the best epoch marked and its train/val gap shown."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = range(1, len(history["loss"]) + 1)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.plot(epochs, history[metric], label=f"train {metric}")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label=f"validation {metric}")
        ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch {best_epoch}")
        ax.set(xlabel="epoch", ylabel=metric)
        _integer_ticks(ax)
        ax.legend(fontsize=8)
    if "val_accuracy" in history:
        train, val = history["accuracy"][best_epoch - 1], history["val_accuracy"][best_epoch - 1]
        acc_ax.annotate("", xy=(best_epoch, val), xytext=(best_epoch, train),
                        arrowprops={"arrowstyle": "<->", "color": "red"})
        acc_ax.set_title(f"gap at best epoch: {100 * (train - val):.1f} points", fontsize=9)
    return _png(fig)


def roc(fpr: Sequence[float], tpr: Sequence[float], auc: float) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC curve (test)")
    ax.legend(loc="lower right")
    return _png(fig)


def confusion(matrix: list[list[int]]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(matrix, cmap="Blues")
    largest = max(max(row) for row in matrix) or 1
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center",
                    color="white" if matrix[i][j] > largest / 2 else "black")
    ax.set_xticks([0, 1], ["predicted 0", "predicted 1"])
    ax.set_yticks([0, 1], ["true 0", "true 1"])
    ax.set_title("confusion matrix (test)")
    return _png(fig)


def metric_across_versions(labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> bytes:
    """One line per metric over the compared rows (versions)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, values in series.items():
        points = [(i, v) for i, v in enumerate(values) if v is not None]
        if points:
            ax.plot(*zip(*points), "o-", label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
    ax.set(title="across versions")
    ax.legend()
    return _png(fig)
