"""Classifier metrics on numpy arrays: AUROC (rank based, ties averaged), precision, recall, accuracy."""

from __future__ import annotations

import numpy as np


def auroc(labels, scores) -> float:
    """Area under the ROC curve (Mann-Whitney U); NaN when only one class is present."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, start, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_stats(labels, scores, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall and AUROC of ``scores > threshold`` against ``labels``."""
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) > threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    n = len(y)
    return {
        "n": n,
        "positives": int(y.sum()),
        "accuracy": float((pred == y).mean()) if n else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "auroc": auroc(y, scores),
    }
