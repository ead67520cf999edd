"""Classification metrics from labels and predictions (numpy only, no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = examples of true class i predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro averages, confusion matrix.

    A class that is never predicted has precision 0 (and one that never occurs recall 0),
    the usual convention, so that an empty class shows up as a bad number, not as NaN.
    """
    counts = confusion_matrix(y_true, y_pred, len(class_names))
    true_positives = np.diag(counts).astype(np.float64)
    predicted = counts.sum(axis=0)
    actual = counts.sum(axis=1)
    precision = _safe_divide(true_positives, predicted)
    recall = _safe_divide(true_positives, actual)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    total = int(counts.sum())
    return {
        "accuracy": _round(true_positives.sum() / total) if total else 0.0,
        "correct": int(true_positives.sum()),
        "examples": total,
        "macro_precision": _round(precision.mean()),
        "macro_recall": _round(recall.mean()),
        "macro_f1": _round(f1.mean()),
        "per_class": [
            {
                "class": name,
                "precision": _round(precision[index]),
                "recall": _round(recall[index]),
                "f1": _round(f1[index]),
                "support": int(actual[index]),
            }
            for index, name in enumerate(class_names)
        ],
        "confusion_matrix": counts.tolist(),
    }


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _round(value: float) -> float:
    # Six decimals: stable JSON (and so a stable digest) without hiding real differences.
    return round(float(value), 6)
