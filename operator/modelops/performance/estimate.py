"""Classification and regression metrics from the aggregates a server can export without keeping a record.

The estimate is confidence-based performance estimation (CBPE, as NannyML names it): when a model's probabilities
are calibrated, a record predicted as class `a` is of class `b` with probability p_b. Summed per predicted class,
those probabilities are the *expected* confusion matrix, and every metric follows from it as from a realized one.
So a server exports, per predicted class, the sum of each class's calibrated probability (and a histogram of the
positive class's score, for ROC AUC); once labels arrive, the same functions turn the realized counts into the
realized metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassificationMetrics:
    """Metrics of one window; precision, recall and F1 are the positive class's for two classes, else macro
    averages over the classes that occur (predicted or actual); None where undefined (no such record)."""

    samples: float
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class RegressionMetrics:
    samples: int
    mae: float | None
    rmse: float | None


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def classification(confusion: np.ndarray, positive: int = 1) -> ClassificationMetrics:
    """Metrics of a confusion matrix, rows the predicted class and columns the actual one: realized counts, or the
    expected matrix of calibrated probabilities summed per predicted class (then the metrics are estimates)."""
    matrix = np.asarray(confusion, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(f"a confusion matrix is square, of two classes or more: got shape {matrix.shape}")
    total = float(matrix.sum())
    predicted, actual, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    accuracy = _ratio(float(hits.sum()), total)
    if matrix.shape[0] == 2:
        precision = _ratio(float(hits[positive]), float(predicted[positive]))
        recall = _ratio(float(hits[positive]), float(actual[positive]))
        return ClassificationMetrics(total, accuracy, precision, recall, _f1(precision, recall))
    present = [c for c in range(matrix.shape[0]) if predicted[c] > 0 or actual[c] > 0]
    per_class = [
        (_ratio(float(hits[c]), float(predicted[c])) or 0.0, _ratio(float(hits[c]), float(actual[c])) or 0.0)
        for c in present
    ]
    if not per_class:
        return ClassificationMetrics(total, None, None, None, None)
    precision = float(np.mean([p for p, _ in per_class]))
    recall = float(np.mean([r for _, r in per_class]))
    f1 = float(np.mean([_f1(p, r) or 0.0 for p, r in per_class]))
    return ClassificationMetrics(total, accuracy, precision, recall, f1)


def binned_roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
    """ROC AUC from the positives and negatives per score bin (bins in increasing score): the chance that a
    positive scores above a negative, ties within a bin counting half. Realized counts give the realized AUC,
    within the bins' resolution; expected ones (the sum of the calibrated score per bin, and count minus that sum)
    give the estimate. None without both classes."""
    pos, neg = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
    pairs = float(pos.sum() * neg.sum())
    return float(np.sum(pos * (below + neg / 2)) / pairs) if pairs > 0 else None


def regression(samples: int, absolute_error_sum: float, squared_error_sum: float) -> RegressionMetrics:
    """Realized regression metrics from the error sums of labelled answers (a regressor's error cannot be
    estimated without labels: it has no calibrated confidence to read it from)."""
    if samples <= 0:
        return RegressionMetrics(0, None, None)
    return RegressionMetrics(samples, absolute_error_sum / samples, float(np.sqrt(squared_error_sum / samples)))
