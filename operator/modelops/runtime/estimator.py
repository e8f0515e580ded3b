"""The model to fit: a scikit-learn estimator by import path (wrapped in the preprocessing it needs),
or a user's `module:function`."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from modelops.contract.serving import NUMERIC_TYPES

from .redact import redact


class EstimatorError(ValueError):
    """The estimator cannot be made or fitted; the message names the field."""


def import_object(path: str, field: str) -> Any:
    """`package.module:function` or `package.module.Class`."""
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise EstimatorError(f"{field}: cannot import {path!r}: {error}") from None


def as_strings(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Categories as text (missing stays missing), so training and serving encode them alike."""
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].astype(str).where(frame[column].notna())
    return frame


def preprocessing(types: dict[str, str]) -> Pipeline:
    """Impute numbers with the median; one-hot encode the rest (unknown categories are ignored at serving)."""
    numeric = [c for c, t in types.items() if t in NUMERIC_TYPES]
    other = [c for c, t in types.items() if t not in NUMERIC_TYPES]
    encode = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                other,
            ),
        ]
    )
    strings = FunctionTransformer(as_strings, kw_args={"columns": other}, validate=False)
    return Pipeline([("strings", strings), ("encode", encode)])


def fit(
    *,
    estimator: str | None,
    function: str | None,
    params: dict[str, Any],
    seed: int,
    types: dict[str, str],
    x: pd.DataFrame,
    y: pd.Series,
) -> Any:
    if function:
        train = import_object(function, "trainer.function")
        try:
            return train(x, y, params)
        except Exception as error:  # the user's code: its message may quote data
            raise EstimatorError(
                f"trainer.function: {function} failed: {type(error).__name__}: {redact(str(error))}"
            ) from None
    cls = import_object(estimator or "", "trainer.estimator.className")
    arguments = dict(params)
    if "random_state" in inspect.signature(cls).parameters:
        arguments.setdefault("random_state", seed)
    try:
        model = cls(**arguments)
    except TypeError as error:
        raise EstimatorError(f"trainer.estimator.params: {redact(str(error))}") from None
    pipeline = Pipeline([("prepare", preprocessing(types)), ("model", model)])
    try:
        return pipeline.fit(x, y)
    except ValueError as error:
        raise EstimatorError(f"trainer.estimator: fitting failed: {redact(str(error))}") from None
