"""Held-out metrics, by task."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as m

from modelops.contract.training import CLASSIFICATION_METRICS as CLASSIFICATION
from modelops.contract.training import MIN_SLICE_ROWS, Slice
from modelops.contract.training import REGRESSION_METRICS as REGRESSION


class EvaluationError(ValueError):
    """The evaluation asked for cannot be made; the message names the field."""


def evaluate(
    task: str, estimator: object, x_test: Any, y_test: Any, wanted: list[str] | None = None
) -> dict[str, float]:
    names = wanted or list(CLASSIFICATION if task == "classification" else REGRESSION)
    unknown = set(names) - set(CLASSIFICATION if task == "classification" else REGRESSION)
    if unknown:
        raise EvaluationError(f"evaluation.metrics: {', '.join(sorted(unknown))} do not apply to {task}")
    predicted = estimator.predict(x_test)  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    if task == "classification":
        # the model's classes, not those a part of the rows happens to hold (a slice may miss one)
        labels = getattr(estimator, "classes_", np.unique(y_test))
        average = "binary" if len(labels) == 2 else "macro"
        proba = estimator.predict_proba(x_test) if hasattr(estimator, "predict_proba") else None
        for name in names:
            if name == "accuracy":
                out[name] = m.accuracy_score(y_test, predicted)
            elif name == "precision":
                out[name] = m.precision_score(y_test, predicted, average=average, zero_division=0)
            elif name == "recall":
                out[name] = m.recall_score(y_test, predicted, average=average, zero_division=0)
            elif name == "f1":
                out[name] = m.f1_score(y_test, predicted, average=average, zero_division=0)
            elif name == "rocAuc" and proba is not None:
                out[name] = (
                    m.roc_auc_score(y_test, proba[:, 1])
                    if proba.shape[1] == 2
                    else m.roc_auc_score(y_test, proba, multi_class="ovr", labels=estimator.classes_)  # type: ignore[attr-defined]
                )
            elif name == "logLoss" and proba is not None:
                out[name] = m.log_loss(y_test, proba, labels=estimator.classes_)  # type: ignore[attr-defined]
    else:
        for name in names:
            if name == "r2":
                out[name] = m.r2_score(y_test, predicted)
            elif name == "mae":
                out[name] = m.mean_absolute_error(y_test, predicted)
            elif name == "rmse":
                out[name] = m.root_mean_squared_error(y_test, predicted)
            elif name == "mape":
                out[name] = m.mean_absolute_percentage_error(y_test, predicted)
    return {k: round(float(v), 6) for k, v in out.items() if np.isfinite(v)}  # undefined on these rows: not said


def by_slice(
    task: str,
    estimator: object,
    x_test: Any,
    y_test: Any,
    wanted: list[str] | None,
    slices: list[Slice],
    hashed: list[str],
) -> dict[str, dict[str, float]]:
    """The held-out metrics of each declared slice; none for a slice of fewer than MIN_SLICE_ROWS rows."""
    out: dict[str, dict[str, float]] = {}
    for part in slices:
        field = f"evaluation.slices[{part.name}].column"
        if part.column in hashed:
            raise EvaluationError(f"{field}: {part.column!r} is hashed by spec.privacy.hash, its values are gone")
        if part.column not in x_test.columns:
            raise EvaluationError(f"{field}: {part.column!r} is not a feature the model reads")
        column = x_test[part.column]
        if part.values is not None:
            rows = column.astype(str).isin(part.values).to_numpy()
        else:
            numbers = column.astype(float).to_numpy()
            rows = np.ones(len(column), dtype=bool)
            if part.min is not None:
                rows &= numbers >= part.min
            if part.max is not None:
                rows &= numbers < part.max
        if rows.sum() < MIN_SLICE_ROWS:
            out[part.name] = {}
            continue
        names = wanted or list(CLASSIFICATION if task == "classification" else REGRESSION)
        if task == "classification" and len(np.unique(y_test[rows])) < 2:
            names = [n for n in names if n != "rocAuc"]  # undefined on one class
        out[part.name] = evaluate(task, estimator, x_test[rows], y_test[rows], names)
    return out
