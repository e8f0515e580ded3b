"""Held-out metrics, by task."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as m

from modelops.contract.training import CLASSIFICATION_METRICS as CLASSIFICATION
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
        labels = np.unique(y_test)
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
    return {k: round(float(v), 6) for k, v in out.items()}
