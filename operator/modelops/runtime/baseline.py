"""Baseline statistics of the training data: the bins the server counts live traffic on, for drift.

Numeric features get quantile bins given as Prometheus-style upper bounds (`le`), the last bin open
(+Inf); categorical ones get their most frequent categories plus `__other__`, stored as the keyed labels the
server counts live values under (the key is stored beside them): no raw category is kept.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import pandas as pd

from modelops.contract.serving import NUMERIC_TYPES, OTHER

from .telemetry import bin_counts, category_label, counts_by_value, factorizable, numeric_values

NUMERIC_BINS = 10
TOP_CATEGORIES = 20


def feature_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    return "category"


def _present(values: np.ndarray) -> np.ndarray:
    """The values that are not NaN (the array itself when none is: no copy of a large column)."""
    missing = np.isnan(values)
    return values[~missing] if missing.any() else values


def numeric_edges(values: np.ndarray, bins: int = NUMERIC_BINS) -> list[float]:
    """Interior upper bounds at the quantiles, deduplicated (a discrete feature gets fewer bins)."""
    values = _present(values)
    if len(values) == 0:
        return []
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def numeric_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts per bin: bin i holds edges[i-1] < x <= edges[i]; the last bin is x > edges[-1]."""
    return list(bin_counts(_present(values), edges).tolist())


def summarize(name: str, values: pd.Series, kind: str, key: bytes | None = None) -> dict[str, Any]:
    """One feature's bins and counts; with `key`, categories are kept only as their keyed labels."""
    if kind in NUMERIC_TYPES:
        array = numeric_values(values)
        edges = numeric_edges(array)
        return {"name": name, "kind": "numeric", "edges": edges, "counts": numeric_counts(array, edges)}
    # Categories are the values' text; strings, integers and booleans are counted before `str`, which is one to one
    # on them (on 200,000 integers, `astype(str)` alone takes longer than counting).
    text = values if factorizable(values.dtype) else values.dropna().astype(str)
    frequencies = counts_by_value(text, dropna=True)
    top = frequencies[:TOP_CATEGORIES]
    summary: dict[str, Any] = {
        "name": name,
        "kind": "categorical",
        "categories": [category_label(c, key) if key else str(c) for c, _ in top],
        "counts": [n for _, n in top] + [sum(n for _, n in frequencies[TOP_CATEGORIES:])],
        "other": OTHER,
    }
    if key:
        summary["key"] = key.hex()
    return summary


def baseline(features: pd.DataFrame, types: dict[str, str], predictions: np.ndarray, task: str) -> dict[str, Any]:
    """The features' summaries (categories keyed by a key drawn for this model), and the predictions' (class
    labels are the model's own outputs, kept as they are so versions can be compared)."""
    key = secrets.token_bytes(16)
    prediction_kind = "category" if task == "classification" else "number"
    return {
        "rows": len(features),
        "features": [summarize(c, features[c], types[c], key) for c in features.columns],
        "prediction": summarize("prediction", pd.Series(predictions), prediction_kind),
    }
