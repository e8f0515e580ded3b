"""What a server exports of its model's quality, as counts only: what the calibrated probabilities expect of its
answers before any label (the monitor's estimate), and what labels posted later say of them (realized).

Class labels become label values only as the model's own classes (a posted label that is not one is refused), so
neither a feature value nor anything a caller makes up ever reaches a series.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelops.contract import serving as wire
from modelops.contract.serving import MAX_CLASSES, SCORE_BINS, score_bin

from .feedback import Kept


def score_bins(scores: np.ndarray) -> np.ndarray:
    """The bin (1 to SCORE_BINS) of each score: bin i holds (i-1)/n < s <= i/n, a score of 0 the first."""
    return np.clip(np.ceil(np.asarray(scores, dtype=float) * SCORE_BINS), 1, SCORE_BINS).astype(int)


def expected_matrix(predicted: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Rows the predicted class, columns the actual one: each record adds its probabilities to its prediction's row."""
    classes = probabilities.shape[1]
    rows = np.zeros((len(predicted), classes))
    rows[np.arange(len(predicted)), predicted] = 1.0
    return rows.T @ probabilities


class Quality:
    """The quality counters of one served version (through BentoML's metrics API, so they join its /metrics); a
    classifier's `classes` in the model's order, None for a regressor. What the answers expect is added up in memory
    until `flush` (as the server's histograms are); what labels say is counted as they come."""

    def __init__(self, model: str, version: str, classes: list[Any] | None) -> None:
        import bentoml

        self.labels = {"model": model, "version": version}
        self.classes = None if classes is None else [str(c) for c in classes]
        self._position = {c: i for i, c in enumerate(self.classes or [])}
        self.binary = self.classes is not None and len(self.classes) == 2
        self.matrix = self.classes is not None and len(self.classes) <= MAX_CLASSES
        self._children: dict[tuple[Any, ...], Any] = {}
        # what `answered` counted and `flush` has not yet added to the series
        self._expected = np.zeros((len(self.classes or []),) * 2)
        self._scores = np.zeros(SCORE_BINS + 1, dtype=np.int64)
        self._score_sums = np.zeros(SCORE_BINS + 1)
        names = ["model", "version"]
        counter = bentoml.metrics.Counter
        self.expected = counter(
            name=wire.EXPECTED,
            documentation="Sum of the calibrated probability of class `actual` over the records predicted `predicted`.",
            labelnames=[*names, "predicted", "actual"],
        )
        self.scores = counter(
            name=wire.SCORES, documentation="Records per bin of the positive class's score.", labelnames=[*names, "bin"]
        )
        self.score_sum = counter(
            name=wire.SCORE_SUM,
            documentation="Sum of the positive class's score per bin of it.",
            labelnames=[*names, "bin"],
        )
        self.labelled = counter(
            name=wire.LABELLED,
            documentation="Labelled records by predicted and actual class.",
            labelnames=[*names, "predicted", "actual"],
        )
        self.labelled_scores = counter(
            name=wire.LABELLED_SCORES,
            documentation="Labelled records per bin of the positive class's score, by actual class.",
            labelnames=[*names, "bin", "actual"],
        )
        self.values = counter(name=wire.LABELLED_VALUES, documentation="Labelled records.", labelnames=names)
        self.absolute = counter(
            name=wire.ABSOLUTE_ERROR, documentation="Sum of the labelled records' absolute errors.", labelnames=names
        )
        self.squared = counter(
            name=wire.SQUARED_ERROR, documentation="Sum of the labelled records' squared errors.", labelnames=names
        )
        self.outcomes = counter(
            name=wire.FEEDBACK,
            documentation="Labels posted, by outcome: joined to an answer, unknown (or expired) request, rejected.",
            labelnames=[*names, "outcome"],
        )

    def positive_scores(self, probabilities: np.ndarray | None) -> list[float] | None:
        """What an answer keeps beside its prediction for a label to join: the positive class's score."""
        if probabilities is None or not self.binary:
            return None
        return [float(s) for s in probabilities[:, 1]]

    def answered(self, predictions: list[Any], probabilities: np.ndarray | None) -> None:
        """Count what the probabilities expect of these answers (until `flush`, in memory)."""
        if probabilities is None or not self.matrix or self.classes is None:
            return
        self.answered_positions(np.asarray([self._position[str(p)] for p in predictions]), probabilities)

    def answered_positions(self, predicted: np.ndarray, probabilities: np.ndarray) -> None:
        """Count what the probabilities expect of a batch's answers, given as the predicted classes' positions in
        the model's classes (a batch is counted at once: the sums are those of its requests counted one by one)."""
        if not self.matrix or self.classes is None:
            return
        self._expected += expected_matrix(predicted, probabilities)
        if self.binary:
            scores = probabilities[:, 1]
            bins = score_bins(scores)
            self._scores += np.bincount(bins, minlength=SCORE_BINS + 1)
            self._score_sums += np.bincount(bins, weights=scores, minlength=SCORE_BINS + 1)

    def flush(self) -> None:
        """Add what `answered` counted since the last flush to the series."""
        if self.classes is None:
            return
        for p, a in zip(*np.nonzero(self._expected), strict=True):
            self._child(self.expected, predicted=self.classes[p], actual=self.classes[a]).inc(self._expected[p, a])
        for i in np.nonzero(self._scores)[0]:
            self._child(self.scores, bin=score_bin(int(i))).inc(int(self._scores[i]))
            self._child(self.score_sum, bin=score_bin(int(i))).inc(float(self._score_sums[i]))
        self._expected[:] = 0
        self._scores[:] = 0
        self._score_sums[:] = 0

    def _child(self, family: Any, **labels: str) -> Any:
        """A series of one of the answers' families, looked up once (a lookup per bin per request is slow)."""
        key = (id(family), *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(**self.labels, **labels)
        return child

    def label_problem(self, label: Any) -> str | None:
        """Why a posted label cannot join this model's answers (never quoting it), or None."""
        if self.classes is None:
            number = isinstance(label, int | float) and not isinstance(label, bool)
            return None if number and np.isfinite(label) else "a regressor's label must be a number"
        if str(label) not in self._position:
            return f"a label must be one of the model's {len(self.classes)} classes"
        return None

    def joined(self, kept: Kept, label: Any) -> None:
        """Count a label joined to the answer it labels."""
        if self.classes is None:
            error = float(label) - float(kept.prediction)
            self.values.labels(**self.labels).inc()
            self.absolute.labels(**self.labels).inc(abs(error))
            self.squared.labels(**self.labels).inc(error * error)
            return
        actual = str(label)
        if self.matrix:
            self.labelled.labels(**self.labels, predicted=str(kept.prediction), actual=actual).inc()
        if self.binary and kept.score is not None:
            index = int(score_bins(np.asarray([kept.score]))[0])
            self.labelled_scores.labels(**self.labels, bin=score_bin(index), actual=actual).inc()

    def outcome(self, outcome: wire.FeedbackOutcome, labels: int) -> None:
        if labels:
            self.outcomes.labels(**self.labels, outcome=outcome).inc(labels)
