"""A ModelMonitor's judgement of one window: drift per feature, error rate, latency, and the alerts they raise.

Pure: the controller brings the baseline (from the version's baselineUri) and the live counts of the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelops.api.v1alpha1 import ModelMonitor
from modelops.api.v1alpha1.common import duration_seconds
from modelops.api.v1alpha1.modelmonitor import ErrorRateSpec, LatencySpec
from modelops.drift import DatasetDrift, FeatureDrift, dataset_drift, feature_drift
from modelops.runtime.telemetry import OTHER, bin_label

from . import meta
from .measure import ServingTotals
from .modeldeployment import latency_quantile

ALERTS = ("DriftDetected", "ErrorRateHigh", "LatencyHigh")


def window_delta(older: ServingTotals | None, newer: ServingTotals) -> ServingTotals:
    """What happened between two scrapes of cumulative counters; a counter that went down (a pod restarted)
    counts from zero."""
    if older is None:
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
    )


def aligned(summary: dict[str, Any], live: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and live counts on the baseline's bins, in the same order (missing values left out)."""
    if summary["kind"] == "numeric":
        labels = [bin_label(e) for e in summary["edges"]] + ["+Inf"]
    else:
        labels = [*summary["categories"], OTHER]
    return np.asarray(summary["counts"], dtype=float), np.asarray([live.get(b, 0.0) for b in labels], dtype=float)


@dataclass
class Judgement:
    features: list[FeatureDrift]
    dataset: DatasetDrift
    requests: float
    error_rate: float | None
    latency: float | None
    #: Alert name → message, for the alerts that are raised now.
    alerts: dict[str, str] = field(default_factory=dict)


def judge(monitor: ModelMonitor, baseline: dict[str, Any], window: ServingTotals) -> Judgement:
    spec = monitor.spec
    drift = spec.drift
    overrides = {o.feature: o for o in (drift.features or [])} if drift else {}
    results: list[FeatureDrift] = []
    if drift is None or drift.enabled:
        for summary in baseline["features"]:
            name = summary["name"]
            override = overrides.get(name)
            default = (
                (drift.numeric_method if drift else "psi")
                if summary["kind"] == "numeric"
                else (drift.categorical_method if drift else "chiSquared")
            )
            expected, live = aligned(summary, window.features.get(name, {}))
            results.append(
                feature_drift(
                    name,
                    expected,
                    live,
                    method=(override.method if override and override.method else default),  # type: ignore[arg-type]
                    edges=summary.get("edges"),
                    threshold=(
                        override.threshold if override and override.threshold else (drift.threshold if drift else None)
                    ),
                    min_samples=drift.min_samples if drift else 200,
                )
            )
    overall = dataset_drift(results, drift.dataset_drift_share if drift else 0.5)
    alerts: dict[str, str] = {}
    if overall.verdict == "Drift":
        judged = len([r for r in results if r.verdict != "NotEnoughData"])
        named = ", ".join(overall.drifted[:5]) + (
            f" and {len(overall.drifted) - 5} more" if len(overall.drifted) > 5 else ""
        )
        alerts["DriftDetected"] = f"{len(overall.drifted)} of {judged} features drifted: {named}"
    error_rate = window.errors / window.requests if window.requests else None
    limits = spec.error_rate or ErrorRateSpec()
    if error_rate is not None and window.requests >= limits.min_requests and error_rate > limits.max:
        alerts["ErrorRateHigh"] = (
            f"error rate {error_rate:.1%} over {window.requests:.0f} requests exceeds {limits.max:.1%}"
        )
    slow = spec.latency or LatencySpec()
    latency = latency_quantile(window.latency_buckets, slow.quantile)
    if latency is not None and window.requests >= limits.min_requests and latency > duration_seconds(slow.max):
        alerts["LatencyHigh"] = f"p{slow.quantile * 100:g} latency {latency * 1000:.0f}ms exceeds {slow.max}"
    return Judgement(results, overall, window.requests, error_rate, latency, alerts)


def prometheus_rule(monitor: ModelMonitor, model: str) -> dict[str, Any]:
    """The monitor's limits as Prometheus alerting rules, for teams whose alerts live in Alertmanager.

    Error rate and latency are computed from the serving pods' own metrics; drift from the operator's
    `modelops_monitor_alert_active` gauge (drift needs the baseline, which only the operator reads)."""
    spec = monitor.spec
    namespace, name = monitor.metadata.namespace or "", monitor.metadata.name
    limits, slow = spec.error_rate or ErrorRateSpec(), spec.latency or LatencySpec()
    served = f'model="{model}"'
    window = spec.window
    labels = {"severity": "warning", "namespace": namespace, "monitor": name, "deployment": spec.deployment}

    def alert(alert_name: str, expr: str, summary: str) -> dict[str, Any]:
        return {
            "alert": f"ModelOps{alert_name}",
            "expr": expr,
            "for": spec.interval,
            "labels": labels,
            "annotations": {"summary": summary},
        }

    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "modelops", "app.kubernetes.io/managed-by": "modelops"},
            "ownerReferences": [meta.owner_reference("ModelMonitor", name, monitor.metadata.uid or "")],
        },
        "spec": {
            "groups": [
                {
                    "name": f"modelops.{namespace}.{name}",
                    "rules": [
                        alert(
                            "ErrorRateHigh",
                            f"sum(increase(modelops_request_errors_total{{{served}}}[{window}])) / "
                            f"sum(increase(modelops_requests_total{{{served}}}[{window}])) > {limits.max}",
                            f"{model}: error rate above {limits.max:.1%}",
                        ),
                        alert(
                            "LatencyHigh",
                            f"histogram_quantile({slow.quantile}, sum by (le) "
                            f"(rate(modelops_request_latency_seconds_bucket{{{served}}}[{window}]))) > "
                            f"{duration_seconds(slow.max)}",
                            f"{model}: p{slow.quantile * 100:g} latency above {slow.max}",
                        ),
                        alert(
                            "DriftDetected",
                            f'modelops_monitor_alert_active{{namespace="{namespace}",monitor="{name}",'
                            f'alert="DriftDetected"}} == 1',
                            f"{model}: data drift detected by ModelMonitor {name}",
                        ),
                    ],
                }
            ]
        },
    }
