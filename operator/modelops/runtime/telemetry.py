"""What a serving pod exports: requests, errors by kind, latency, live histograms of every feature and of the
predictions on the baseline's own bins, and that baseline itself — aggregated counts only, never a request's values.

Each feature's histogram is one label set of a single counter family, `bin` being the bin's upper bound
(`le`-style, last `+Inf`) or the category's label: Prometheus histograms must share buckets within a family, and
column names are not safe metric names. A category's label is a keyed hash of it (the key is in the model file's
baseline only), so no feature value — an e-mail, a name — ever becomes a label value in a scrape.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import numpy as np
import pandas as pd

from modelops.contract import serving as wire
from modelops.contract.serving import LATENCY_BUCKETS, MISSING, OPEN_BIN, OTHER, bin_label


def category_label(value: Any, key: bytes) -> str:
    """The label of a category: the same for the same value and key, and telling nothing of the value."""
    return "c" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:16]


def numeric_bins(values: np.ndarray, edges: list[float]) -> dict[str, int]:
    """Counts per bin label; missing values are counted apart."""
    counts: dict[str, int] = {}
    missing = int(np.isnan(values).sum())
    if missing:
        counts[MISSING] = missing
    present = values[~np.isnan(values)]
    index = np.searchsorted(np.asarray(edges, dtype=float), present, side="left")
    labels = [bin_label(e) for e in edges] + [OPEN_BIN]
    for i, n in zip(*np.unique(index, return_counts=True), strict=True):
        counts[labels[i]] = int(n)
    return counts


def categorical_bins(values: pd.Series, categories: list[str], key: bytes | None) -> dict[str, int]:
    """Counts per category label; with no key (predictions), the labels are the values themselves."""
    known = set(categories)
    counts: dict[str, int] = {}
    for value, n in values.value_counts(dropna=False).items():  # each distinct value is hashed once
        if pd.isna(value):
            label = MISSING
        else:
            label = category_label(value, key) if key is not None else str(value)
            label = label if label in known else OTHER
        counts[label] = counts.get(label, 0) + int(n)
    return counts


def histogram(values: Any, summary: dict[str, Any]) -> dict[str, int]:
    """Counts of `values` on the bins of one baseline summary (numeric or categorical)."""
    if summary["kind"] == "numeric":
        return numeric_bins(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float), summary["edges"])
    key = bytes.fromhex(summary["key"]) if "key" in summary else None
    return categorical_bins(pd.Series(values), summary["categories"], key)


def baseline_bins(summary: dict[str, Any]) -> dict[str, int]:
    """The baseline's own counts, by the labels live values are counted under."""
    if summary["kind"] == "numeric":
        labels = [bin_label(e) for e in summary["edges"]] + [OPEN_BIN]
    else:
        labels = [*summary["categories"], OTHER]
    return dict(zip(labels, summary["counts"], strict=True))


class Telemetry:
    """The service's Prometheus metrics (through BentoML's metrics API, so they join its /metrics)."""

    def __init__(self, baseline: dict[str, Any], model: str, version: str) -> None:
        import bentoml

        self.labels = {"model": model, "version": version}
        self.baseline = {f["name"]: f for f in baseline["features"]}
        self.prediction_summary = baseline["prediction"]
        names = ["model", "version"]
        self.requests = bentoml.metrics.Counter(
            name=wire.REQUESTS, documentation="Prediction requests.", labelnames=names
        )
        self.records = bentoml.metrics.Counter(name=wire.RECORDS, documentation="Records predicted.", labelnames=names)
        self.errors = bentoml.metrics.Counter(
            name=wire.ERRORS,
            documentation="Failed prediction requests, by kind (bad_input, model_error).",
            labelnames=[*names, "kind"],
        )
        self.latency = bentoml.metrics.Histogram(
            name=wire.LATENCY,
            documentation="Prediction latency.",
            labelnames=names,
            buckets=LATENCY_BUCKETS,
        )
        self.features = bentoml.metrics.Counter(
            name=wire.FEATURES,
            documentation="Live values of each feature, counted on the training baseline's bins.",
            labelnames=[*names, "feature", "bin"],
        )
        self.predictions = bentoml.metrics.Counter(
            name=wire.PREDICTIONS,
            documentation="Predictions, counted on the training baseline's bins.",
            labelnames=[*names, "bin"],
        )
        reference = bentoml.metrics.Gauge(
            name=wire.BASELINE,
            documentation="The training baseline of each feature, on the bins live values are counted on: what "
            "drift is measured against, carried in the model file (covered by its digest).",
            labelnames=[*names, "feature", "kind", "bin"],
        )
        for name, summary in self.baseline.items():
            for label, count in baseline_bins(summary).items():
                reference.labels(**self.labels, feature=name, kind=summary["kind"], bin=label).set(count)

    def request(self, seconds: float, records: int) -> None:
        self.requests.labels(**self.labels).inc()
        self.records.labels(**self.labels).inc(records)
        self.latency.labels(**self.labels).observe(seconds)

    def error(self, kind: str, seconds: float) -> None:
        self.requests.labels(**self.labels).inc()
        self.errors.labels(**self.labels, kind=kind).inc()
        self.latency.labels(**self.labels).observe(seconds)

    def observe(self, frame: pd.DataFrame, predictions: Any) -> None:
        for name, summary in self.baseline.items():
            for label, n in histogram(frame[name], summary).items():
                self.features.labels(**self.labels, feature=name, bin=label).inc(n)
        for label, n in histogram(predictions, self.prediction_summary).items():
            self.predictions.labels(**self.labels, bin=label).inc(n)
