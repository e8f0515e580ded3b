"""Totals from the serving pods' /metrics text (Prometheus exposition format), summed over pods."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class ServingTotals:
    requests: float = 0.0
    errors: float = 0.0
    #: Cumulative latency histogram: upper bound (seconds) → requests at or below it.
    latency_buckets: dict[float, float] = field(default_factory=dict)
    #: feature → bin label → count.
    features: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: dict[str, float] = field(default_factory=dict)
    #: Why the totals could not be read, if they could not.
    problem: str | None = None


def serving_totals(texts: list[str]) -> ServingTotals:
    totals = ServingTotals()
    buckets: defaultdict[float, float] = defaultdict(float)
    features: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    predictions: defaultdict[str, float] = defaultdict(float)
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "modelops_requests_total":
                    totals.requests += sample.value
                elif sample.name == "modelops_request_errors_total":
                    totals.errors += sample.value
                elif sample.name == "modelops_request_latency_seconds_bucket":
                    buckets[float(sample.labels["le"])] += sample.value
                elif sample.name == "modelops_feature_observations_total":
                    features[sample.labels["feature"]][sample.labels["bin"]] += sample.value
                elif sample.name == "modelops_prediction_observations_total":
                    predictions[sample.labels["bin"]] += sample.value
    totals.latency_buckets = dict(buckets)
    totals.features = {k: dict(v) for k, v in features.items()}
    totals.predictions = dict(predictions)
    return totals


def prometheus_queries(model: str, version: str, window: str | None = None) -> dict[str, str]:
    """PromQL for one served version's counts, summed over its pods: totals since each pod started, or, with a
    window such as `5m`, what was added during it (`increase`)."""
    selector = f'model="{model}",version="{version}"'

    def counted(metric: str, by: str = "") -> str:
        series = f"{metric}{{{selector}}}"
        inner = f"increase({series}[{window}])" if window else series
        return f"sum{f' by ({by})' if by else ''} ({inner})"

    return {
        "requests": counted("modelops_requests_total"),
        "errors": counted("modelops_request_errors_total"),
        "latency": counted("modelops_request_latency_seconds_bucket", "le"),
        "features": counted("modelops_feature_observations_total", "feature, bin"),
        "predictions": counted("modelops_prediction_observations_total", "bin"),
    }


def totals_from_prometheus(answers: dict[str, list[dict]]) -> ServingTotals:
    """Totals from the `data.result` of each instant query (an empty result counts as nothing yet)."""

    def scalar(result: list[dict]) -> float:
        return float(result[0]["value"][1]) if result else 0.0

    features: defaultdict[str, dict[str, float]] = defaultdict(dict)
    for row in answers.get("features", []):
        features[row["metric"]["feature"]][row["metric"]["bin"]] = float(row["value"][1])
    return ServingTotals(
        requests=scalar(answers["requests"]),
        errors=scalar(answers["errors"]),
        latency_buckets={float(r["metric"]["le"]): float(r["value"][1]) for r in answers["latency"]},
        features=dict(features),
        predictions={r["metric"]["bin"]: float(r["value"][1]) for r in answers.get("predictions", [])},
    )
