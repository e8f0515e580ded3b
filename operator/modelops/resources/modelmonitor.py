"""A ModelMonitor's judgement of one window: drift per feature, error rate, latency, and the alerts they raise.

Pure: the controller brings the live counts of the window and the training baseline, both as the serving pods
export them (the baseline from the model file they verified), so the operator itself reads no file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelops.api.v1alpha1 import ModelMonitor
from modelops.api.v1alpha1.common import duration_seconds
from modelops.api.v1alpha1.modelmonitor import ErrorRateSpec, LatencySpec
from modelops.drift import DatasetDrift, FeatureDrift, dataset_drift, feature_drift

from . import meta
from .measure import ServingTotals
from .modeldeployment import latency_quantile

ALERTS = ("DriftDetected", "ErrorRateHigh", "LatencyHigh")
#: The labels of the open-ended bins: above the last numeric edge, and the categories beyond the baseline's top ones.
OPEN_BIN = "+Inf"
OTHER = "__other__"


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
        baseline=newer.baseline,
        kinds=newer.kinds,
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


@dataclass
class Judgement:
    features: list[FeatureDrift]
    dataset: DatasetDrift
    requests: float
    error_rate: float | None
    latency: float | None
    #: Alert name → message, for the alerts that are raised now.
    alerts: dict[str, str] = field(default_factory=dict)


def judge(monitor: ModelMonitor, window: ServingTotals) -> Judgement:
    """The window's verdicts against the baseline the window carries (`window.baseline`)."""
    spec = monitor.spec
    drift = spec.drift
    overrides = {o.feature: o for o in (drift.features or [])} if drift else {}
    results: list[FeatureDrift] = []
    if drift is None or drift.enabled:
        for name in sorted(window.baseline):
            kind = window.kinds.get(name, "numeric")
            override = overrides.get(name)
            default = (
                (drift.numeric_method if drift else "psi")
                if kind == "numeric"
                else (drift.categorical_method if drift else "chiSquared")
            )
            bins = aligned(kind, window.baseline[name], window.features.get(name, {}))
            results.append(
                feature_drift(
                    name,
                    bins.expected,
                    bins.observed,
                    method=(override.method if override and override.method else default),  # type: ignore[arg-type]
                    edges=bins.edges,
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
        worst = sorted((r for r in results if r.verdict == "Drift"), key=lambda r: -(r.score or 0.0))
        named = ", ".join(r.feature for r in worst[:5]) + (
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

    Error rate and latency are computed from the serving pods' own metrics, of this namespace only (the `namespace`
    label Prometheus attaches to the pods' series); drift from the operator's `modelops_monitor_alert_active`
    gauge."""
    spec = monitor.spec
    namespace, name = monitor.metadata.namespace or "", monitor.metadata.name
    limits, slow = spec.error_rate or ErrorRateSpec(), spec.latency or LatencySpec()
    served = f'namespace="{namespace}",model="{model}"'
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
