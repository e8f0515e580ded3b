"""Performance from aggregates, against direct computations on synthetic records: the estimate from calibrated
probabilities summed per predicted class equals the record-by-record expectation exactly, realized counts give
scikit-learn's metrics exactly, and on calibrated scores the estimate lands near what the labels then show."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from modelops.performance import binned_roc_auc, classification, regression

BINS = np.linspace(0, 1, 1001)


def calibrated(n: int = 20_000, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive-class scores that are calibrated by construction (each label drawn with its score's chance),
    the labels, and the predictions at 0.5."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(2, 2, n)
    labels = (rng.random(n) < scores).astype(int)
    return scores, labels, (scores >= 0.5).astype(int)


def expected_matrix(scores: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """What a server exports: per predicted class, the sum of each class's calibrated probability."""
    probabilities = np.column_stack([1 - scores, scores])
    return np.array([probabilities[predictions == c].sum(axis=0) for c in (0, 1)])


def test_the_estimate_is_the_record_by_record_expectation_exactly() -> None:
    scores, _, predictions = calibrated()
    estimate = classification(expected_matrix(scores, predictions))
    right = np.where(predictions == 1, scores, 1 - scores)  # each record's chance of being right
    expected_tp = scores[predictions == 1].sum()
    assert estimate.samples == pytest.approx(len(scores))
    assert estimate.accuracy == pytest.approx(right.mean(), rel=1e-12)
    assert estimate.precision == pytest.approx(expected_tp / (predictions == 1).sum(), rel=1e-12)
    assert estimate.recall == pytest.approx(expected_tp / scores.sum(), rel=1e-12)


def test_on_calibrated_scores_the_estimate_lands_near_what_the_labels_show() -> None:
    scores, labels, predictions = calibrated()
    estimate = classification(expected_matrix(scores, predictions))
    assert estimate.accuracy == pytest.approx(metrics.accuracy_score(labels, predictions), abs=0.01)
    assert estimate.f1 == pytest.approx(metrics.f1_score(labels, predictions), abs=0.01)


@pytest.mark.parametrize("classes", [2, 3])
def test_realized_counts_give_scikit_learns_metrics(classes: int) -> None:
    rng = np.random.default_rng(classes)
    labels, predictions = rng.integers(0, classes, 500), rng.integers(0, classes, 500)
    predictions[:50] = labels[:50]
    confusion = metrics.confusion_matrix(labels, predictions, labels=range(classes)).T  # rows: predicted
    realized = classification(confusion)
    average = "binary" if classes == 2 else "macro"
    assert realized.accuracy == pytest.approx(metrics.accuracy_score(labels, predictions))
    assert realized.precision == pytest.approx(metrics.precision_score(labels, predictions, average=average))
    assert realized.recall == pytest.approx(metrics.recall_score(labels, predictions, average=average))
    assert realized.f1 == pytest.approx(metrics.f1_score(labels, predictions, average=average))


def test_a_class_never_predicted_has_no_precision_and_an_empty_window_no_metric() -> None:
    only_negative = classification(np.array([[30.0, 10.0], [0.0, 0.0]]))
    assert only_negative.precision is None and only_negative.recall == 0.0 and only_negative.accuracy == 0.75
    assert classification(np.zeros((2, 2))).accuracy is None


def test_binned_roc_auc_matches_scikit_learn_within_the_bins_resolution() -> None:
    scores, labels, _ = calibrated()
    which = np.digitize(scores, BINS[1:-1])
    positives = np.bincount(which[labels == 1], minlength=len(BINS) - 1)
    negatives = np.bincount(which[labels == 0], minlength=len(BINS) - 1)
    realized = metrics.roc_auc_score(labels, scores)
    assert binned_roc_auc(positives, negatives) == pytest.approx(realized, abs=1e-3)
    # the estimate: per bin, the expected positives are the sum of the calibrated scores
    counts, score_sums = (
        np.bincount(which, minlength=len(BINS) - 1),
        np.bincount(which, weights=scores, minlength=len(BINS) - 1),
    )
    assert binned_roc_auc(score_sums, counts - score_sums) == pytest.approx(realized, abs=0.01)
    assert binned_roc_auc(positives, np.zeros_like(negatives)) is None


def test_regression_errors_from_their_sums() -> None:
    rng = np.random.default_rng(3)
    truth, answers = rng.normal(size=300), rng.normal(size=300)
    errors = answers - truth
    realized = regression(300, float(np.abs(errors).sum()), float((errors**2).sum()))
    assert realized.mae == pytest.approx(metrics.mean_absolute_error(truth, answers))
    assert realized.rmse == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, answers)))
    assert regression(0, 0.0, 0.0).mae is None


def test_a_matrix_that_is_not_square_is_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        classification(np.ones((2, 3)))
