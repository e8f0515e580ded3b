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


def prometheus_queries(model: str, version: str) -> dict[str, str]:
    """PromQL for one served version's totals, summed over its pods (counters since each pod started)."""
    selector = f'model="{model}",version="{version}"'
    return {
        "requests": f"sum(modelops_requests_total{{{selector}}})",
        "errors": f"sum(modelops_request_errors_total{{{selector}}})",
        "latency": f"sum by (le) (modelops_request_latency_seconds_bucket{{{selector}}})",
    }


def totals_from_prometheus(answers: dict[str, list[dict]]) -> ServingTotals:
    """Totals from the `data.result` of each instant query (an empty result counts as nothing yet)."""

    def scalar(result: list[dict]) -> float:
        return float(result[0]["value"][1]) if result else 0.0

    return ServingTotals(
        requests=scalar(answers["requests"]),
        errors=scalar(answers["errors"]),
        latency_buckets={float(r["metric"]["le"]): float(r["value"][1]) for r in answers["latency"]},
    )
