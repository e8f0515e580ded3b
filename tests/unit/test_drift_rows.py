"""The raw-row path to drift (baseline summaries, live histograms) gives exactly what its straightforward pandas
version gave: the same baseline JSON and the same histograms, labels, counts and order, on awkward data too."""

from __future__ import annotations

import json
import secrets
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.contract.serving import MISSING, NUMERIC_TYPES, OPEN_BIN, OTHER, bin_label
from modelops.runtime.baseline import NUMERIC_BINS, TOP_CATEGORIES, summarize
from modelops.runtime.telemetry import FEW, bin_counts, category_label, histogram

# The reference: the path as it was written first, plainly in pandas.


def reference_summary(name: str, values: pd.Series, kind: str, key: bytes | None = None) -> dict[str, Any]:
    if kind in NUMERIC_TYPES:
        array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        array = array[~np.isnan(array)]
        edges = (
            [float(e) for e in np.unique(np.quantile(array, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]))]
            if len(array)
            else []
        )
        index = np.searchsorted(np.asarray(edges), array, side="left")
        counts = np.bincount(index, minlength=len(edges) + 1).astype(int).tolist()
        return {"name": name, "kind": "numeric", "edges": edges, "counts": counts}
    frequencies = values.dropna().astype(str).value_counts()
    top = frequencies.head(TOP_CATEGORIES)
    summary: dict[str, Any] = {
        "name": name,
        "kind": "categorical",
        "categories": [category_label(c, key) if key else str(c) for c in top.index],
        "counts": [int(c) for c in top.to_numpy()] + [int(frequencies.iloc[TOP_CATEGORIES:].sum())],
        "other": OTHER,
    }
    if key:
        summary["key"] = key.hex()
    return summary


def reference_histogram(values: Any, summary: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    if summary["kind"] == "numeric":
        array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        if missing := int(np.isnan(array).sum()):
            counts[MISSING] = missing
        index = np.searchsorted(np.asarray(summary["edges"], dtype=float), array[~np.isnan(array)], side="left")
        labels = [bin_label(e) for e in summary["edges"]] + [OPEN_BIN]
        for i, n in zip(*np.unique(index, return_counts=True), strict=True):
            counts[labels[i]] = int(n)
        return counts
    key = bytes.fromhex(summary["key"]) if "key" in summary else None
    known = set(summary["categories"])
    for value, n in pd.Series(values).value_counts(dropna=False).items():
        if pd.isna(value):
            label = MISSING
        else:
            label = category_label(value, key) if key is not None else str(value)
            label = label if label in known else OTHER
        counts[label] = counts.get(label, 0) + int(n)
    return counts


# Awkward columns, each at a few sizes (below and above FEW, where the paths change).


def numeric_columns(rng: np.random.Generator, n: int) -> dict[str, Any]:
    normal = rng.normal(5, 3, n)
    normal[rng.random(n) < 0.1] = np.nan
    mixed = np.array([rng.choice([1.5, -2, None, "3.25", "x", True, np.nan, "-0.0"]) for _ in range(n)], dtype=object)
    infinite = rng.normal(0, 1, n)
    infinite[rng.random(n) < 0.05] = np.inf
    infinite[rng.random(n) < 0.05] = -np.inf
    return {
        "normal with NaN": pd.Series(normal),
        "integers": pd.Series(rng.integers(-3, 4, n)),
        "few distinct": pd.Series(rng.choice([0.0, -0.0, 1.0, 2.5], n, p=[0.6, 0.2, 0.15, 0.05])),
        "booleans": pd.Series(rng.random(n) < 0.3),
        "mixed objects": pd.Series(mixed),
        "infinities": pd.Series(infinite),
        "all NaN": pd.Series(np.full(n, np.nan)),
        "nullable integers": pd.Series(rng.integers(0, 9, n), dtype="Int64").mask(rng.random(n) < 0.2),
    }


def categorical_columns(rng: np.random.Generator, n: int) -> dict[str, Any]:
    many = [f"v{j}" for j in range(40)]  # more than TOP_CATEGORIES, equally often: ties decide the top
    strings = pd.Series(rng.choice(many, n)).mask(rng.random(n) < 0.1)
    tied = pd.Series(np.resize(np.array(many), n)[rng.permutation(n)])
    mixed = [
        rng.choice(np.array([1, True, "1", 1.0, None, np.nan, pd.NA, "a", 0, False, -0.0], dtype=object))
        for _ in range(n)
    ]
    return {
        "strings with NaN": strings,
        "tied strings": tied,
        "integers": pd.Series(rng.integers(0, 30, n)),
        "booleans": pd.Series(rng.random(n) < 0.4),
        "mixed objects": pd.Series(mixed, dtype=object),
        "objects but floats": pd.Series(
            [rng.choice(np.array([1, True, "1", None, pd.NA, "a", 0, False, np.nan], dtype=object)) for _ in range(n)],
            dtype=object,
        ),
        "numpy strings": pd.Series(rng.choice(np.array(["x", "y", "zz"]), n)),  # also passed as an array of str
        "object strings and None": pd.Series(np.array(rng.choice(["a", "b", None], n), dtype=object), dtype=object),
        "python-backed strings": pd.Series(rng.choice(["a", "b", "c"], n), dtype="string[python]").mask(
            rng.random(n) < 0.2
        ),
        "floats": pd.Series(rng.choice([0.5, 1.0, np.nan], n)),
        "pandas categorical": pd.Series(pd.Categorical(rng.choice(["a", "b"], n), categories=["a", "b", "never"])),
    }


SIZES = [0, 1, 7, 64, FEW - 1, FEW, 5000]


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # quantiles between -inf and inf are NaN, in both
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("keyed", [False, True])
def test_summaries_and_histograms_are_those_of_the_plain_pandas_path(n: int, keyed: bool) -> None:
    rng = np.random.default_rng(n)
    key = secrets.token_bytes(16) if keyed else None
    columns = [(name, "number", values) for name, values in numeric_columns(rng, n).items()]
    columns += [(name, "category", values) for name, values in categorical_columns(rng, n).items()]
    for name, kind, values in columns:
        summary = summarize(name, values, kind, key)
        assert json.dumps(summary) == json.dumps(reference_summary(name, values, kind, key)), name
        live = values.sample(frac=1.0, random_state=1) if n else values  # other rows, other order
        arrays = [live.to_numpy(), live.to_numpy().astype(str)] if name == "numpy strings" else [live.to_numpy()]
        for as_given in (live, *arrays, live.tolist()):  # the server passes columns and arrays
            expected = list(reference_histogram(as_given, summary).items())
            assert list(histogram(as_given, summary).items()) == expected, (name, type(as_given))


def test_unseen_categories_count_as_other_and_missing_apart() -> None:
    key = secrets.token_bytes(16)
    summary = summarize("plan", pd.Series(["basic"] * 5 + ["plus"] * 3), "category", key)
    live = pd.Series(["plus", "gold", None, "basic", "gold", np.nan])
    assert histogram(live, summary) == reference_histogram(live, summary)
    assert histogram(live, summary) == {
        category_label("plus", key): 1,
        OTHER: 2,
        MISSING: 2,
        category_label("basic", key): 1,
    }
    assert histogram(np.array(["basic", "pro"]), summarize("p", pd.Series(["basic"]), "category")) == {
        "basic": 1,
        OTHER: 1,
    }


@pytest.mark.parametrize(
    "edges", [[1.0, 2.0, 3.0], [1.0, 1.0, 2.0], [-np.inf, 0.0, np.inf], [3.0, 1.0, 2.0], [np.nan], [0.0, np.nan], []]
)
def test_bin_counts_agree_with_a_binary_search_whatever_the_edges(edges: list[float]) -> None:
    values = np.random.default_rng(3).choice([-np.inf, -1.0, 0.0, -0.0, 1.0, 1.5, 2.0, 3.0, 7.0, np.inf], 5000)
    expected = np.bincount(np.searchsorted(np.asarray(edges), values, side="left"), minlength=len(edges) + 1)
    assert bin_counts(values, edges).tolist() == expected.tolist()
