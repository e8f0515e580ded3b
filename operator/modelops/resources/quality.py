"""What a served version is worth over a window: its metrics estimated from what its calibrated probabilities expect
of its answers (classifiers, before any label) and realized from the labels joined to its answers, held against the
held-out value its ModelVersion records. Pure: the controller brings the window's counts and the version's record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from modelops.api.v1alpha1.common import Track
from modelops.api.v1alpha1.modelmonitor import PerformanceMetric, PerformanceSpec, QualityMetrics, VersionPerformance
from modelops.contract.serving import SCORE_BINS, score_bin
from modelops.contract.training import LOWER_IS_BETTER
from modelops.performance import binned_roc_auc, classification, regression

from .measure import REALIZED, QualityKey

#: The metrics' fields in `QualityMetrics`, by the name a spec and a ModelVersion give them.
FIELDS: dict[PerformanceMetric, str] = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "rocAuc": "roc_auc",
    "mae": "mae",
    "rmse": "rmse",
}
SCORE_LABELS = [score_bin(i) for i in range(1, SCORE_BINS + 1)]


@dataclass(frozen=True)
class Served:
    """A version served now, as the controller found it: its record's name and held-out metrics, its track, and
    the quality counts its pods made over the window."""

    version: str
    track: Track
    holdout: dict[str, float]
    counts: dict[QualityKey, float]


def with_labels_of(window: dict[QualityKey, float], label_window: dict[QualityKey, float]) -> dict[QualityKey, float]:
    """The window's counts of answers with the label window's counts of labels."""
    return {
        **{k: v for k, v in window.items() if k[0] not in REALIZED},
        **{k: v for k, v in label_window.items() if k[0] in REALIZED},
    }


def _natural(classes: set[str]) -> list[str]:
    """Classes in the model's own order (scikit-learn sorts them): by number when every one is a number."""
    try:
        return sorted(classes, key=float)
    except ValueError:
        return sorted(classes)


def _classes(counts: dict[QualityKey, float]) -> list[str]:
    seen = {label for (key, p, a) in counts if key in ("expected", "labelled") for label in (p, a)}
    return _natural(seen)


def _matrix(counts: dict[QualityKey, float], key: str, classes: list[str]) -> np.ndarray:
    position = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)))
    for (k, predicted, actual), value in counts.items():
        if k == key:
            matrix[position[predicted], position[actual]] += value
    return matrix


def _auc(counts: dict[QualityKey, float], key: str, positive: str) -> float | None:
    """ROC AUC on the score bins: the positives and negatives per bin expected from the scores, or labelled."""
    if key == "expected":
        records = np.asarray([counts.get(("scores", b, ""), 0.0) for b in SCORE_LABELS])
        positives = np.asarray([counts.get(("scoreSum", b, ""), 0.0) for b in SCORE_LABELS])
        return binned_roc_auc(positives, np.clip(records - positives, 0.0, None))
    positives = np.zeros(SCORE_BINS)
    negatives = np.zeros(SCORE_BINS)
    index = {b: i for i, b in enumerate(SCORE_LABELS)}
    for (k, bin_, actual), value in counts.items():
        if k == "labelledScores" and bin_ in index:
            (positives if actual == positive else negatives)[index[bin_]] += value
    return binned_roc_auc(positives, negatives)


def _classification(counts: dict[QualityKey, float], key: str) -> QualityMetrics | None:
    classes = _classes(counts)
    if len(classes) < 2:
        return None
    matrix = _matrix(counts, key, classes)
    if matrix.sum() <= 0:
        return None
    metrics = classification(matrix, positive=1)
    auc = _auc(counts, key, classes[1]) if len(classes) == 2 else None
    return QualityMetrics(
        records=round(metrics.samples),
        accuracy=metrics.accuracy,
        precision=metrics.precision,
        recall=metrics.recall,
        f1=metrics.f1,
        roc_auc=auc,
    )


def estimated(counts: dict[QualityKey, float]) -> QualityMetrics | None:
    """A classifier's metrics expected from its calibrated probabilities (confidence-based estimation); None for
    a regressor, which has no calibrated confidence to read them from, or with nothing answered."""
    return _classification(counts, "expected")


def realized(counts: dict[QualityKey, float]) -> QualityMetrics | None:
    """The metrics of the labelled answers; None before any label."""
    values = counts.get(("values", "", ""), 0.0)
    if values > 0:
        errors = regression(
            round(values), counts.get(("absoluteError", "", ""), 0.0), counts.get(("squaredError", "", ""), 0.0)
        )
        return QualityMetrics(records=errors.samples, mae=errors.mae, rmse=errors.rmse)
    return _classification(counts, "labelled")


def value(metrics: QualityMetrics | None, metric: PerformanceMetric) -> float | None:
    return None if metrics is None else cast(float | None, getattr(metrics, FIELDS[metric]))


def _rounded(metrics: QualityMetrics | None) -> QualityMetrics | None:
    if metrics is None:
        return None
    fields = {f: round(v, 4) for f in FIELDS.values() if (v := getattr(metrics, f)) is not None}
    return metrics.model_copy(update=fields)


def assess(spec: PerformanceSpec, served: Served) -> tuple[VersionPerformance, str | None]:
    """One version's worth over the window, and, when it is degraded, what to say of it."""
    metric, drop = spec.metric, spec.max_drop
    holdout = served.holdout.get(metric)
    estimate, labelled = estimated(served.counts), realized(served.counts)
    lower_is_better = metric in LOWER_IS_BETTER
    breaches, judged_any = [], False
    for kind, metrics, floor, unit in (
        ("estimated", estimate, spec.min_records, "records"),
        ("realized", labelled, spec.min_labels, "labels"),
    ):
        measured = value(metrics, metric)
        if measured is None or holdout is None or metrics is None or metrics.records < floor:
            continue
        judged_any = True
        worse = measured - holdout if lower_is_better else holdout - measured
        if worse > drop:
            direction = "above" if lower_is_better else "below"
            breaches.append(
                f"{kind} {metric} {measured:.3f} over {metrics.records} {unit} is {worse:.3f} {direction} "
                f"{served.version}'s held-out {holdout:.3f} (maxDrop {drop:g})"
            )
    if holdout is None:
        message = f"{served.version} records no held-out {metric}: nothing to hold it to"
    elif breaches:
        message = "; ".join(breaches)
    elif judged_any:
        message = f"within {drop:g} of {served.version}'s held-out {metric} {holdout:.3f}"
    else:
        message = f"fewer than {spec.min_records} answered records and {spec.min_labels} labels in the window"
    verdict = "Degraded" if breaches else "Healthy" if judged_any else "NotEnoughData"
    status = VersionPerformance(
        version=served.version,
        track=served.track,
        metric=metric,
        holdout=holdout,
        estimated=_round(value(estimate, metric)),
        realized=_round(value(labelled, metric)),
        verdict=verdict,
        message=message,
        estimate=_rounded(estimate),
        labelled=_rounded(labelled),
    )
    return status, (message if breaches else None)


def _round(number: float | None) -> float | None:
    return None if number is None else round(number, 4)
