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
