"""Binary-classification metrics from labels and scores, in numpy (no framework needed)."""

from __future__ import annotations

from typing import Any

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and thresholds, one point per distinct score."""
    order = np.argsort(-scores, kind="stable")
    y, s = labels[order].astype(np.int64), scores[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    pos, neg = max(int(y.sum()), 1), max(len(y) - int(y.sum()), 1)
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos], np.r_[np.inf, s[distinct]]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids); NaN when only one class is present."""
    if labels.min() == labels.max():
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def classification(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 of the positive (main-track) class, AUC and the confusion
    matrix [[TN, FP], [FN, TP]] at ``threshold``."""
    labels = labels.astype(np.int64)
    predicted = (scores >= threshold).astype(np.int64)
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / max(len(labels), 1), "precision": precision, "recall": recall, "f1": f1,
            "auc": roc_auc(labels, scores), "threshold": threshold, "confusion_matrix": [[tn, fp], [fn, tp]],
            "samples": int(len(labels)), "positives": int(labels.sum())}
