"""Totals from the serving pods' /metrics text (Prometheus exposition format), summed over pods, or from
Prometheus; and the training baseline the pods export beside them."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from modelops.contract import serving as wire
from modelops.contract.serving import OPEN_BIN, OTHER

#: The serving pods' series, as the exposition names them.
REQUESTS = f"{wire.REQUESTS}_total"
ERRORS = f"{wire.ERRORS}_total"
LATENCY_BUCKETS = f"{wire.LATENCY}_bucket"
FEATURES = f"{wire.FEATURES}_total"
PREDICTIONS = f"{wire.PREDICTIONS}_total"
BASELINE = wire.BASELINE
#: A stable server's comparison with its shadow: series name → the key it is counted under in `mirrored`.
MIRRORED = {
    f"{wire.SHADOW_COMPARED}_total": "compared",
    f"{wire.SHADOW_AGREED}_total": "agreed",
    f"{wire.SHADOW_DIFFERENCE}_total": "difference",
}
MIRROR_FAILURES = f"{wire.SHADOW_FAILURES}_total"
#: What the servers count of their model's quality: series name → (its key in `quality`, the two labels that tell
#: its counts apart, or none).
QUALITY: dict[str, tuple[str, tuple[str, ...]]] = {
    f"{wire.EXPECTED}_total": ("expected", ("predicted", "actual")),
    f"{wire.SCORES}_total": ("scores", ("bin",)),
    f"{wire.SCORE_SUM}_total": ("scoreSum", ("bin",)),
    f"{wire.LABELLED}_total": ("labelled", ("predicted", "actual")),
    f"{wire.LABELLED_SCORES}_total": ("labelledScores", ("bin", "actual")),
    f"{wire.LABELLED_VALUES}_total": ("values", ()),
    f"{wire.ABSOLUTE_ERROR}_total": ("absoluteError", ()),
    f"{wire.SQUARED_ERROR}_total": ("squaredError", ()),
}
#: The quality counts of labelled answers (the rest count answers): realized metrics measure them over their own
#: window.
REALIZED = frozenset({"labelled", "labelledScores", "values", "absoluteError", "squaredError"})
#: A quality count: (key, first label, second label), absent labels empty.
QualityKey = tuple[str, str, str]


def quality_key(name: str, labels: dict[str, str]) -> QualityKey:
    key, names = QUALITY[name]
    first, second = (*(labels.get(n, "") for n in names), "", "")[:2]
    return key, first, second


@dataclass
class ServingTotals:
    requests: float = 0.0
    errors: float = 0.0
    #: Cumulative latency histogram: upper bound (seconds) → requests at or below it.
    latency_buckets: dict[float, float] = field(default_factory=dict)
    #: feature → bin label → count.
    features: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: dict[str, float] = field(default_factory=dict)
    #: The training baseline, on the same bins: feature → bin label → count (a gauge, the same in every pod).
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    #: feature → `numeric` or `categorical`.
    kinds: dict[str, str] = field(default_factory=dict)
    #: What these (stable) servers found comparing their answers with a shadow's: shadow version → `compared`,
    #: `agreed`, `difference`, or a failure kind (`dropped`, `unreachable`, `rejected`) → count.
    mirrored: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The model's quality counts (`QUALITY`): expected and realized confusion matrices, score bins, error sums.
    quality: dict[QualityKey, float] = field(default_factory=dict)
    #: Why the totals could not be read, if they could not.
    problem: str | None = None


@dataclass(frozen=True)
class Scope:
    """Whose series a measurement reads: one version of one model in one namespace, so a shared Prometheus never
    mixes another namespace's traffic into a verdict."""

    namespace: str
    model: str
    version: str
    #: In a shadow step, the stable track's comparison with this shadow version is read too.
    shadow_version: str | None = None
    #: The model's quality counts are read too (a monitor holding the version to its performance); `labelled`:
    #: only those of labelled answers, for the label window (nothing else is read).
    quality: Literal["none", "all", "labelled"] = "none"

    def selector(self) -> str:
        return f'namespace="{self.namespace}",model="{self.model}",version="{self.version}"'


def serving_totals(texts: list[str], version: str | None = None) -> ServingTotals:
    """Totals over the pods' scrapes; with `version`, only that version's series."""
    totals = ServingTotals()
    buckets: defaultdict[float, float] = defaultdict(float)
    features: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    predictions: defaultdict[str, float] = defaultdict(float)
    mirrored: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    for text in texts:
        try:
            families = list(text_string_to_metric_families(text))
        except ValueError:  # a pod that answers something else than metrics counts as no data
            continue
        for family in families:
            for sample in family.samples:
                labels = sample.labels
                if version is not None and labels.get("version") != version:
                    continue
                if sample.name == REQUESTS:
                    totals.requests += sample.value
                elif sample.name == ERRORS:
                    totals.errors += sample.value
                elif sample.name == LATENCY_BUCKETS:
                    buckets[float(labels["le"])] += sample.value
                elif sample.name == FEATURES:
                    features[labels["feature"]][labels["bin"]] += sample.value
                elif sample.name == PREDICTIONS:
                    predictions[labels["bin"]] += sample.value
                elif sample.name == BASELINE:
                    totals.baseline.setdefault(labels["feature"], {})[labels["bin"]] = sample.value
                    totals.kinds[labels["feature"]] = labels["kind"]
                elif sample.name in MIRRORED:
                    mirrored[labels["shadow_version"]][MIRRORED[sample.name]] += sample.value
                elif sample.name == MIRROR_FAILURES:
                    mirrored[labels["shadow_version"]][labels["kind"]] += sample.value
                elif sample.name in QUALITY:
                    key = quality_key(sample.name, labels)
                    totals.quality[key] = totals.quality.get(key, 0.0) + sample.value
    totals.latency_buckets = dict(buckets)
    totals.features = {k: dict(v) for k, v in features.items()}
    totals.predictions = dict(predictions)
    totals.mirrored = {k: dict(v) for k, v in mirrored.items()}
    return totals


def prometheus_queries(scope: Scope, window: str | None = None) -> dict[str, str]:
    """PromQL for one served version's counts, summed over its pods: totals since each pod started, or, with a
    window such as `5m`, what was added during it (`increase`); and its baseline."""
    selector = scope.selector()

    def counted(metric: str, by: str = "", among: str = selector) -> str:
        series = f"{metric}{{{among}}}"
        inner = f"increase({series}[{window}])" if window else series
        return f"sum{f' by ({by})' if by else ''} ({inner})"

    quality = {
        metric: counted(metric, ", ".join(labels))
        for metric, (key, labels) in QUALITY.items()
        if scope.quality == "all" or (scope.quality == "labelled" and key in REALIZED)
    }
    if scope.quality == "labelled":
        return quality
    queries = {
        "requests": counted(REQUESTS),
        "errors": counted(ERRORS),
        "latency": counted(LATENCY_BUCKETS, "le"),
        "features": counted(FEATURES, "feature, bin"),
        "predictions": counted(PREDICTIONS, "bin"),
        "baseline": f"max by (feature, kind, bin) ({BASELINE}{{{selector}}})",
        **quality,
    }
    if scope.shadow_version is not None:
        compared = f'{selector},shadow_version="{scope.shadow_version}"'
        for metric in MIRRORED:
            queries[metric] = counted(metric, "shadow_version", compared)
        queries[MIRROR_FAILURES] = counted(MIRROR_FAILURES, "shadow_version, kind", compared)
    return queries


def totals_from_prometheus(answers: dict[str, list[dict[str, Any]]]) -> ServingTotals:
    """Totals from the `data.result` of each instant query (an empty result counts as nothing yet)."""

    def scalar(result: list[dict[str, Any]]) -> float:
        return float(result[0]["value"][1]) if result else 0.0

    def by_feature(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        grouped: defaultdict[str, dict[str, float]] = defaultdict(dict)
        for row in rows:
            grouped[row["metric"]["feature"]][row["metric"]["bin"]] = float(row["value"][1])
        return dict(grouped)

    baseline = answers.get("baseline", [])
    mirrored: defaultdict[str, dict[str, float]] = defaultdict(dict)
    for metric, key in MIRRORED.items():
        for row in answers.get(metric, []):
            mirrored[row["metric"]["shadow_version"]][key] = float(row["value"][1])
    for row in answers.get(MIRROR_FAILURES, []):
        mirrored[row["metric"]["shadow_version"]][row["metric"]["kind"]] = float(row["value"][1])
    quality = {
        quality_key(metric, row["metric"]): float(row["value"][1])
        for metric in QUALITY
        for row in answers.get(metric, [])
    }
    return ServingTotals(
        requests=scalar(answers.get("requests", [])),
        errors=scalar(answers.get("errors", [])),
        latency_buckets={float(r["metric"]["le"]): float(r["value"][1]) for r in answers.get("latency", [])},
        features=by_feature(answers.get("features", [])),
        predictions={r["metric"]["bin"]: float(r["value"][1]) for r in answers.get("predictions", [])},
        baseline=by_feature(baseline),
        kinds={r["metric"]["feature"]: r["metric"]["kind"] for r in baseline},
        mirrored=dict(mirrored),
        quality=quality,
    )


def window_delta(older: ServingTotals | None, newer: ServingTotals) -> ServingTotals:
    """What happened between two scrapes of cumulative counters; a counter that went down (a pod restarted)
    counts from zero."""
    if older is None or newer.requests < older.requests:
        return newer

    def minus(new: float, old: float) -> float:
        return new - old if new >= old else new

    return ServingTotals(
        requests=minus(newer.requests, older.requests),
        errors=minus(newer.errors, older.errors),
        latency_buckets={k: minus(v, older.latency_buckets.get(k, 0.0)) for k, v in newer.latency_buckets.items()},
        features={
            f: {b: minus(v, older.features.get(f, {}).get(b, 0.0)) for b, v in bins.items()}
            for f, bins in newer.features.items()
        },
        predictions={b: minus(v, older.predictions.get(b, 0.0)) for b, v in newer.predictions.items()},
        baseline=newer.baseline,
        kinds=newer.kinds,
        mirrored={
            s: {k: minus(v, older.mirrored.get(s, {}).get(k, 0.0)) for k, v in counts.items()}
            for s, counts in newer.mirrored.items()
        },
        quality={k: minus(v, older.quality.get(k, 0.0)) for k, v in newer.quality.items()},
    )


@dataclass(frozen=True)
class Aligned:
    """One feature's baseline and live counts on the same bins, in order."""

    expected: np.ndarray
    observed: np.ndarray
    #: The numeric bins' upper bounds (none for categories).
    edges: list[float] | None


def aligned(kind: str, baseline: dict[str, float], live: dict[str, float]) -> Aligned:
    """Live counts on the baseline's bins: numeric bins by their upper bound, the open one last; categories in a
    stable order, the rest last. Missing values (counted apart) are left out."""
    if kind == "numeric":
        edges = sorted(float(b) for b in baseline if b != OPEN_BIN)
        labels = [*sorted((b for b in baseline if b != OPEN_BIN), key=float), OPEN_BIN]
    else:
        edges = None
        labels = [*sorted(b for b in baseline if b != OTHER), OTHER]
    return Aligned(
        np.asarray([baseline.get(b, 0.0) for b in labels], dtype=float),
        np.asarray([live.get(b, 0.0) for b in labels], dtype=float),
        edges,
    )


def latency_quantile(buckets: dict[float, float], quantile: float) -> float | None:
    """The quantile of a cumulative Prometheus histogram (upper bound → count), interpolated as Prometheus does."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-12)
        lower_bound, lower_count = bound, count
    return bounds[-1]


def combined(parts: list[ServingTotals]) -> ServingTotals:
    """The sum of several pods' totals (the baseline is the same in every pod: the last one's is kept)."""
    out = ServingTotals()
    for part in parts:
        out.requests += part.requests
        out.errors += part.errors
        for bound, count in part.latency_buckets.items():
            out.latency_buckets[bound] = out.latency_buckets.get(bound, 0.0) + count
        _add(out.features, part.features)
        _add(out.mirrored, part.mirrored)
        for label, count in part.predictions.items():
            out.predictions[label] = out.predictions.get(label, 0.0) + count
        for key, count in part.quality.items():
            out.quality[key] = out.quality.get(key, 0.0) + count
        out.baseline, out.kinds = part.baseline or out.baseline, part.kinds or out.kinds
    return out


def _add(into: dict[str, dict[str, float]], part: dict[str, dict[str, float]]) -> None:
    for outer, counts in part.items():
        sums = into.setdefault(outer, {})
        for key, count in counts.items():
            sums[key] = sums.get(key, 0.0) + count


def since(start: dict[str, ServingTotals], now: dict[str, ServingTotals]) -> ServingTotals:
    """What the pods counted since `start` (pod uid → its totals then): a pod that came later counts whole, a pod
    whose counters went down (its server restarted) counts from zero, a pod that went away counts no more."""
    return combined([window_delta(start.get(pod), totals) for pod, totals in now.items()])


#: A scrape of every version's totals, and when it was taken (monotonic seconds).
Scrape = tuple[float, dict[str, ServingTotals]]


def counts_over(
    history: Sequence[Scrape], seconds: float, fresh: bool = False, patience: float = 0.5
) -> dict[str, ServingTotals] | None:
    """Each version's counts of (about) the last `seconds`, from scrapes oldest first: the newest scrape minus the
    newest one at least that old. Without one (this process has scraped for less than that: it started, or took
    over, lately), the counters are the window if every pod started within it (`fresh`); else the oldest scrape
    stands in once it is `patience` of the window old, and before that the window cannot be told (None): a pod's
    whole count is no window's. A version the older scrape did not see counts whole."""
    *older, (moment, newest) = history
    old = [counts for when, counts in older if when <= moment - seconds]
    if old:
        reference = old[-1]
    elif fresh:
        reference = {}
    elif older and older[0][0] <= moment - seconds * patience:
        reference = older[0][1]
    else:
        return None
    return {version: window_delta(reference.get(version), counts) for version, counts in newest.items()}
