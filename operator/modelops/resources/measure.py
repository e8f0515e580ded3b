"""Totals from the serving pods' /metrics text (Prometheus exposition format), summed over pods, or from
Prometheus; and the training baseline the pods export beside them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from modelops.contract import serving as wire

#: The serving pods' series, as the exposition names them.
REQUESTS = f"{wire.REQUESTS}_total"
ERRORS = f"{wire.ERRORS}_total"
LATENCY_BUCKETS = f"{wire.LATENCY}_bucket"
FEATURES = f"{wire.FEATURES}_total"
PREDICTIONS = f"{wire.PREDICTIONS}_total"
BASELINE = wire.BASELINE


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
    #: Why the totals could not be read, if they could not.
    problem: str | None = None


@dataclass(frozen=True)
class Scope:
    """Whose series a measurement reads: one version of one model in one namespace, so a shared Prometheus never
    mixes another namespace's traffic into a verdict."""

    namespace: str
    model: str
    version: str

    def selector(self) -> str:
        return f'namespace="{self.namespace}",model="{self.model}",version="{self.version}"'


def serving_totals(texts: list[str], version: str | None = None) -> ServingTotals:
    """Totals over the pods' scrapes; with `version`, only that version's series."""
    totals = ServingTotals()
    buckets: defaultdict[float, float] = defaultdict(float)
    features: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    predictions: defaultdict[str, float] = defaultdict(float)
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
    totals.latency_buckets = dict(buckets)
    totals.features = {k: dict(v) for k, v in features.items()}
    totals.predictions = dict(predictions)
    return totals


def prometheus_queries(scope: Scope, window: str | None = None) -> dict[str, str]:
    """PromQL for one served version's counts, summed over its pods: totals since each pod started, or, with a
    window such as `5m`, what was added during it (`increase`); and its baseline."""
    selector = scope.selector()

    def counted(metric: str, by: str = "") -> str:
        series = f"{metric}{{{selector}}}"
        inner = f"increase({series}[{window}])" if window else series
        return f"sum{f' by ({by})' if by else ''} ({inner})"

    return {
        "requests": counted(REQUESTS),
        "errors": counted(ERRORS),
        "latency": counted(LATENCY_BUCKETS, "le"),
        "features": counted(FEATURES, "feature, bin"),
        "predictions": counted(PREDICTIONS, "bin"),
        "baseline": f"max by (feature, kind, bin) ({BASELINE}{{{selector}}})",
    }


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
    return ServingTotals(
        requests=scalar(answers["requests"]),
        errors=scalar(answers["errors"]),
        latency_buckets={float(r["metric"]["le"]): float(r["value"][1]) for r in answers["latency"]},
        features=by_feature(answers.get("features", [])),
        predictions={r["metric"]["bin"]: float(r["value"][1]) for r in answers.get("predictions", [])},
        baseline=by_feature(baseline),
        kinds={r["metric"]["feature"]: r["metric"]["kind"] for r in baseline},
    )
