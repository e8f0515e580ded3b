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
import time
from collections import Counter
from typing import Any, cast

import numpy as np
import pandas as pd

from modelops.contract import serving as wire
from modelops.contract.serving import LATENCY_BUCKETS, MISSING, OPEN_BIN, OTHER, ErrorKind, bin_label


def category_label(value: Any, key: bytes) -> str:
    """The label of a category: the same for the same value and key, and telling nothing of the value."""
    return "c" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:16]


#: Below this many values (a request's records), plain Python and binary search beat the vectorised paths, whose
#: fixed cost per call (tens of microseconds in pandas) would be most of the time.
FEW = 1024
#: Up to this many edges, one vectorised comparison per edge is faster than a binary search per value.
MAX_COMPARED_EDGES = 64
#: The one NaN object the few values' counting keys all NaNs by (a dict tells NaNs apart unless they are one object).
_NAN = float("nan")


def numeric_values(values: Any) -> np.ndarray:
    """`values` as floats, NaN for what is not a number. Arrays and Series already numeric are converted directly:
    pandas' coercion gives the same floats at several times the cost of counting a request's values."""
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return values.to_numpy(dtype=float) if isinstance(values, pd.Series) else np.asarray(values, dtype=float)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin of values without NaN: bin i holds edges[i-1] < x <= edges[i]; the last bin is x > edges[-1].

    On many values, counting those at most each edge is about ten times faster than placing every value by binary
    search, and gives the same counts when the edges do not decrease (a baseline's never do); other edges keep the
    binary search, whatever it makes of them."""
    bounds = np.asarray(edges, dtype=float)
    if len(values) < FEW or len(bounds) > MAX_COMPARED_EDGES or not _ordered(bounds):
        return np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds) + 1)
    at_most = [np.count_nonzero(values <= bound) for bound in bounds]
    return np.diff(np.array([0, *at_most, len(values)]))


def _ordered(bounds: np.ndarray) -> bool:
    return not np.isnan(bounds).any() and bool(np.all(bounds[1:] >= bounds[:-1]))


def numeric_bins(values: np.ndarray, edges: list[float]) -> dict[str, int]:
    """Counts per bin label (empty bins left out); missing values are counted apart."""
    counts: dict[str, int] = {}
    missing = np.isnan(values)
    if missing.any():
        counts[MISSING] = int(missing.sum())
        values = values[~missing]
    per_bin = bin_counts(values, edges)
    for i in np.flatnonzero(per_bin).tolist():
        counts[bin_label(edges[i]) if i < len(edges) else OPEN_BIN] = int(per_bin[i])
    return counts


def factorizable(dtype: Any) -> bool:
    """Strings, integers and booleans: `pd.factorize` groups them as `value_counts` does, and `str` of its uniques
    is `astype(str)` of the values."""
    return isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "biu")


def _few_counts_by_value(values: list[Any]) -> list[tuple[Any, int]] | None:
    """`counts_by_value` of a few strings, integers and booleans, in plain Python: a dict groups them as pandas does
    (1 with True; None, NaN and NA each apart). None for other values, which pandas must group."""
    counts: dict[Any, int] = {}
    for value in values:
        kind = type(value)
        if kind is float and value != value:
            value = _NAN
        elif kind is not str and kind is not int and kind is not bool and value is not None and value is not pd.NA:
            return None
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])  # stable: ties stay in order of first appearance


def counts_by_value(values: Any, dropna: bool) -> list[tuple[Any, int]]:
    """Distinct values and their counts, most frequent first, ties in order of first appearance: what pandas'
    `value_counts` gives, without building and sorting its index. Strings, integers and booleans are factorized
    (a few of them counted in plain Python); other values go through `value_counts` itself."""
    if not (isinstance(values, np.ndarray) and values.dtype.kind in "biuU"):  # arrays that cannot hold missing values
        values = values if isinstance(values, pd.Series) else pd.Series(values)  # types missing values as pandas does
    # Plain values only: a Categorical's value_counts also counts its unused categories.
    plain = factorizable(values.dtype) or (isinstance(values.dtype, np.dtype) and values.dtype.kind in "OU")
    if not dropna and len(values) < FEW and plain:
        few = _few_counts_by_value(values.tolist())
        if few is not None:
            return few
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if factorizable(series.dtype):
        codes, uniques = pd.factorize(series, use_na_sentinel=dropna)
        counts = np.bincount(codes[codes >= 0] if dropna else codes, minlength=len(uniques))
        distinct = uniques.tolist()
        return [(distinct[i], int(counts[i])) for i in np.argsort(-counts, kind="stable").tolist()]
    return [(value, int(n)) for value, n in series.value_counts(dropna=dropna).items()]


def categorical_bins(values: Any, categories: list[str], key: bytes | None) -> dict[str, int]:
    """Counts per category label of a Series, array or list; with no key (predictions), the labels are the values
    themselves."""
    known = set(categories)
    counts: dict[str, int] = {}
    for value, n in counts_by_value(values, dropna=False):  # each distinct value is hashed once
        if pd.isna(value):
            label = MISSING
        else:
            label = category_label(value, key) if key is not None else str(value)
            label = label if label in known else OTHER
        counts[label] = counts.get(label, 0) + n
    return counts


def histogram(values: Any, summary: dict[str, Any]) -> dict[str, int]:
    """Counts of `values` on the bins of one baseline summary (numeric or categorical)."""
    if summary["kind"] == "numeric":
        return numeric_bins(numeric_values(values), summary["edges"])
    key = bytes.fromhex(summary["key"]) if "key" in summary else None
    return categorical_bins(values, summary["categories"], key)


def baseline_bins(summary: dict[str, Any]) -> dict[str, int]:
    """The baseline's own counts, by the labels live values are counted under."""
    if summary["kind"] == "numeric":
        labels = [bin_label(e) for e in summary["edges"]] + [OPEN_BIN]
    else:
        labels = [*summary["categories"], OTHER]
    return dict(zip(labels, summary["counts"], strict=True))


class Telemetry:
    """The service's Prometheus metrics (through BentoML's metrics API, so they join its /metrics).

    The label sets are looked up once and kept (a lookup per bin per request cost more than the counting). The
    histograms are counted for a model pass's whole batch at once, off the requests' path, and added up in memory
    until `flush` hands them to the series (the server flushes whenever it falls idle, and every `FLUSH_EVERY`
    seconds under load): one increment per series touched, not one per series per pass."""

    FLUSH_EVERY = 0.25

    def __init__(self, baseline: dict[str, Any], model: str, version: str) -> None:
        import bentoml

        self.labels = {"model": model, "version": version}
        self.baseline = {f["name"]: f for f in baseline["features"]}
        self.prediction_summary = baseline["prediction"]
        self.histograms = BatchHistograms(baseline)
        names = ["model", "version"]
        self.requests = bentoml.metrics.Counter(
            name=wire.REQUESTS, documentation="Prediction requests.", labelnames=names
        )
        self.records = bentoml.metrics.Counter(name=wire.RECORDS, documentation="Records predicted.", labelnames=names)
        self.errors = bentoml.metrics.Counter(
            name=wire.ERRORS,
            documentation="Failed prediction requests, by kind (bad_input, model_error, overloaded).",
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
        self._requests = LabelledCounters(self.requests, self.labels)
        self._records = LabelledCounters(self.records, self.labels)
        self._errors = LabelledCounters(self.errors, self.labels, "kind")
        self._latency = self.latency.labels(**self.labels)
        self._features = {
            name: LabelledCounters(self.features, {**self.labels, "feature": name}) for name in self.baseline
        }
        self._predictions = LabelledCounters(self.predictions, self.labels)
        self._slots = np.zeros(len(self.histograms.slot_labels), dtype=np.int64)
        self._pending: dict[str, dict[str, int]] = {}
        self.flushed = time.monotonic()

    def request(self, seconds: float, records: int) -> None:
        self._requests.inc()
        self._records.inc(records)
        self._latency.observe(seconds)

    def error(self, kind: ErrorKind, seconds: float) -> None:
        self._requests.inc()
        self._errors.add({kind: 1})
        self._latency.observe(seconds)

    def observe(self, frame: pd.DataFrame, predictions: Any) -> None:
        """Count a batch's features and predictions on the baseline's bins (until `flush`, in memory)."""
        self._slots += self.histograms.numeric_slots(frame)
        counted = self.histograms.categorical_features(frame)
        counted[PREDICTION] = self.histograms.predictions(predictions)
        for name, counts in counted.items():
            pending = self._pending.setdefault(name, {})
            for label, n in counts.items():
                pending[label] = pending.get(label, 0) + n

    def flush(self) -> None:
        """Add what `observe` counted since the last flush to the series."""
        self.flushed = time.monotonic()
        for i in np.flatnonzero(self._slots):
            name, label = cast(tuple[str, str], self.histograms.slot_labels[i])
            self._features[name].add({label: int(self._slots[i])})
        self._slots[:] = 0
        for name, counts in self._pending.items():
            (self._predictions if name == PREDICTION else self._features[name]).add(counts)
        self._pending.clear()


class LabelledCounters:
    """The children of one counter family that differ in one label (`bin`, `kind`), each made on first use and
    kept: a series appears once it counts something, as before, but is looked up only once."""

    def __init__(self, family: Any, labels: dict[str, str], varying: str = "bin") -> None:
        self.family, self.labels, self.varying = family, labels, varying
        self._children: dict[str, Any] = {}
        self._fixed: Any = None

    def inc(self, amount: float = 1) -> None:
        """The family's one series with just the fixed labels."""
        if self._fixed is None:
            self._fixed = self.family.labels(**self.labels)
        self._fixed.inc(amount)

    def add(self, counts: dict[str, int]) -> None:
        for label, n in counts.items():
            child = self._children.get(label)
            if child is None:
                child = self._children[label] = self.family.labels(**self.labels, **{self.varying: label})
            child.inc(n)


class BatchHistograms:
    """Counts of a batch on the baseline's bins, the same as `histogram` gives column by column, made for a served
    batch: all numeric features are binned at once (one comparison with every feature's edges, one count), and a
    category's keyed label is computed once per distinct value seen (up to `MEMO` of them), not once per batch."""

    MEMO = 10_000
    #: Rows binned at once (the comparison holds rows x features x edges booleans).
    CHUNK = 4096

    def __init__(self, baseline: dict[str, Any]) -> None:
        features = baseline["features"]
        self.names = [f["name"] for f in features]
        self.numeric = [f["name"] for f in features if f["kind"] == "numeric"]
        self.categorical: dict[str, tuple[set[str], bytes | None]] = {
            f["name"]: (set(f["categories"]), bytes.fromhex(f["key"]) if "key" in f else None)
            for f in [*features, {**baseline["prediction"], "name": PREDICTION}]
            if f["kind"] != "numeric"
        }
        self._labels: dict[str, dict[str, str]] = {name: {} for name in self.categorical}
        # each numeric feature's edges padded with +inf to the most any has; its slots are its bins, then missing
        edges = [f["edges"] for f in features if f["kind"] == "numeric"]
        prediction = baseline["prediction"]
        self.prediction_edges: list[float] = prediction["edges"] if prediction["kind"] == "numeric" else []
        width = max([len(e) for e in edges], default=0)
        self.edges = np.full((len(edges), max(width, 1)), np.inf)
        for i, feature_edges in enumerate(edges):
            self.edges[i, : len(feature_edges)] = feature_edges
        self.slots = width + 2
        self.offsets = np.arange(len(edges)) * self.slots
        self.slot_labels: list[tuple[str, str] | None] = []
        for name, feature_edges in zip(self.numeric, edges, strict=True):
            labels = [bin_label(e) for e in feature_edges] + [OPEN_BIN]
            padding: list[tuple[str, str] | None] = [None] * (self.slots - len(labels) - 1)
            self.slot_labels += [(name, label) for label in labels] + padding + [(name, MISSING)]

    def features(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        """Each feature's counts per bin label (a feature with no value in the batch has no entry)."""
        counts: dict[str, dict[str, int]] = {name: {} for name in self.names}
        slots = self.numeric_slots(frame)
        for i in np.flatnonzero(slots):
            name, label = cast(tuple[str, str], self.slot_labels[i])
            counts[name][label] = int(slots[i])
        return {**counts, **self.categorical_features(frame)}

    def numeric_slots(self, frame: pd.DataFrame) -> np.ndarray:
        """The numeric features' counts, per slot (`slot_labels` names each slot's feature and bin)."""
        slots = np.zeros(len(self.slot_labels), dtype=np.int64)
        if self.numeric:
            block = frame if list(frame.columns) == self.numeric else frame[self.numeric]
            values = _float_block(block)
            for start in range(0, len(values), self.CHUNK):
                slots += self._numeric_slots(values[start : start + self.CHUNK])
        return slots

    def categorical_features(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        return {name: self._categorical_counts(name, frame[name]) for name in self.categorical if name != PREDICTION}

    def _numeric_slots(self, values: np.ndarray) -> np.ndarray:
        """Counts per slot of rows x numeric features: a bin holds the values above its edges before it
        (`searchsorted`, side left), like `numeric_bins`."""
        below = (values[:, :, None] > self.edges[None, :, :]).sum(axis=2)
        slots = np.where(np.isnan(values), self.slots - 1, below) + self.offsets
        return np.bincount(slots.ravel(), minlength=len(self.slot_labels))

    def predictions(self, predictions: Any) -> dict[str, int]:
        if PREDICTION in self.categorical:
            return self._categorical_counts(PREDICTION, predictions)
        return numeric_bins(_float_block(predictions), self.prediction_edges)

    def _categorical_counts(self, name: str, values: Any) -> dict[str, int]:
        known, key = self.categorical[name]
        memo = self._labels[name]
        listed = values.tolist() if hasattr(values, "tolist") else list(values)
        try:
            distinct = Counter(listed)
        except TypeError:  # unhashable values (a list sent as a category) are labelled by their text anyway
            distinct = Counter(v if _missing(v) else str(v) for v in listed)
        counts: dict[str, int] = {}
        for value, n in distinct.items():
            if _missing(value):
                label = MISSING
            else:
                text = str(value)  # what the label is made of
                label = memo.get(text, "")
                if not label:
                    label = category_label(text, key) if key is not None else text
                    label = label if label in known else OTHER
                    if len(memo) >= self.MEMO:
                        memo.clear()
                    memo[text] = label
            counts[label] = counts.get(label, 0) + n
        return counts


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


#: The predictions' entry among a batch's histograms.
PREDICTION = "\0prediction"


def _float_block(values: Any) -> np.ndarray:
    """Values as floats, anything that is no number (or missing) as NaN."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        frame = pd.DataFrame(values)
        return frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float).reshape(np.shape(values))
