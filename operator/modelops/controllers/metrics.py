"""The operator's Prometheus metrics, all of them: what the monitors judged, the rollouts' decisions and canary
weights, and the version each deployment serves. `main.run_operator` serves them on `--metrics-port`; the chart's
Grafana dashboard (charts/modelops/dashboards/modelops.json) queries them by these names.

Every series about a resource carries that resource's own `namespace` label, so scrape the operator with
`honor_labels` (a PodMonitor's or ServiceMonitor's `honorLabels: true`), or Prometheus renames the label
`exported_namespace`.
"""

from __future__ import annotations

import threading

import prometheus_client

from modelops.api.v1alpha1 import ModelDeploymentStatus
from modelops.api.v1alpha1.modelmonitor import VersionPerformance

OPERATOR_INFO = prometheus_client.Info("modelops_operator", "The running ModelOps operator.")

DRIFT_SCORE = prometheus_client.Gauge(
    "modelops_monitor_drift_score",
    "Drift score of a feature in the last window.",
    ["namespace", "monitor", "feature", "method"],
)
ALERT_ACTIVE = prometheus_client.Gauge(
    "modelops_monitor_alert_active", "1 while an alert is raised.", ["namespace", "monitor", "alert"]
)
ERROR_RATE = prometheus_client.Gauge(
    "modelops_monitor_error_rate", "Error rate in the last window.", ["namespace", "monitor"]
)
PERFORMANCE = prometheus_client.Gauge(
    "modelops_monitor_performance",
    "What a served version is worth on the monitor's metric: its held-out value, its value estimated in the last "
    "window without labels, and its value realized from the labels posted in it (kind holdout, estimated, realized).",
    ["namespace", "monitor", "version", "metric", "kind"],
)
RETRAINS = prometheus_client.Counter(
    "modelops_monitor_retrains", "ModelBuilds started by monitors.", ["namespace", "monitor"]
)

CANARY_WEIGHT = prometheus_client.Gauge(
    "modelops_rollout_canary_weight",
    "Percent of a deployment's traffic its canary serves (0 without a canary).",
    ["namespace", "deployment"],
)
ROLLOUT_DECISIONS = prometheus_client.Counter(
    "modelops_rollout_decisions",
    "Canary rollout decisions as recorded in status.rollout.lastDecision, by action "
    "(Start, Wait, Advance, Promote, RollBack, Pause, Retry; a Wait counts when its reason changes).",
    ["namespace", "deployment", "decision"],
)
GATE_VALUE = prometheus_client.Gauge(
    "modelops_rollout_gate_value",
    "What a running canary's gate measured over its step's window so far (no series while it cannot be measured).",
    ["namespace", "deployment", "gate"],
)
GATE_LIMIT = prometheus_client.Gauge(
    "modelops_rollout_gate_limit",
    "The declared limit of a running canary's gate (beside its value).",
    ["namespace", "deployment", "gate"],
)
SERVING_VERSION = prometheus_client.Gauge(
    "modelops_deployment_serving_version",
    "The version number a deployment serves on its stable track (no series while it serves none).",
    ["namespace", "deployment", "model"],
)

#: (namespace, deployment) → the `model` label of its serving-version series, to drop it when the model changes.
_serving_model: dict[tuple[str, str], str] = {}
#: (namespace, deployment) → the gates it has series of.
_gates: dict[tuple[str, str], set[str]] = {}
#: (namespace, monitor) → the (version, metric, kind) it has performance series of.
_performance: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
_lock = threading.Lock()


def monitor_performance(namespace: str, monitor: str, performance: list[VersionPerformance]) -> None:
    """Export what each served version is worth; the series of versions no longer served go."""
    values = {
        (p.version, p.metric, kind): value
        for p in performance
        for kind, value in (("holdout", p.holdout), ("estimated", p.estimated), ("realized", p.realized))
        if value is not None
    }
    with _lock:
        for gone in _performance.pop((namespace, monitor), set()) - set(values):
            PERFORMANCE.remove(namespace, monitor, *gone)
        for labels, value in values.items():
            PERFORMANCE.labels(namespace, monitor, *labels).set(value)
        _performance[(namespace, monitor)] = set(values)


def rollout_decision(namespace: str, deployment: str, action: str) -> None:
    """Count a decision the rollout recorded in status.rollout.lastDecision."""
    ROLLOUT_DECISIONS.labels(namespace, deployment, action).inc()


def deployment_status(namespace: str, deployment: str, model: str, status: ModelDeploymentStatus) -> None:
    """Export a ModelDeployment's status: its canary weight and the version it serves."""
    CANARY_WEIGHT.labels(namespace, deployment).set((status.rollout.canary_weight if status.rollout else None) or 0)
    rollout = status.rollout
    measured = rollout.measurement if rollout and rollout.serving_canary() else None
    gates = {g.gate: g for g in (measured.gates or [])} if measured else {}
    with _lock:
        for name in _gates.pop((namespace, deployment), set()) - {n for n, g in gates.items() if g.value is not None}:
            GATE_VALUE.remove(namespace, deployment, name)
            GATE_LIMIT.remove(namespace, deployment, name)
        for name, gate in gates.items():
            if gate.value is not None:
                GATE_LIMIT.labels(namespace, deployment, name).set(gate.limit)
                GATE_VALUE.labels(namespace, deployment, name).set(gate.value)
        _gates[(namespace, deployment)] = {n for n, g in gates.items() if g.value is not None}
    version = status.serving_version_number
    with _lock:
        previous = _serving_model.pop((namespace, deployment), None)
        if previous is not None and (previous != model or version is None):
            SERVING_VERSION.remove(namespace, deployment, previous)
        if version is not None:
            SERVING_VERSION.labels(namespace, deployment, model).set(version)
            _serving_model[(namespace, deployment)] = model


def deployment_gone(namespace: str, deployment: str) -> None:
    """Drop a deleted ModelDeployment's series."""
    labels = {"namespace": namespace, "deployment": deployment}
    with _lock:
        _serving_model.pop((namespace, deployment), None)
        _gates.pop((namespace, deployment), None)
        for metric in (CANARY_WEIGHT, ROLLOUT_DECISIONS, SERVING_VERSION, GATE_VALUE, GATE_LIMIT):
            metric.remove_by_labels(labels)


def monitor_gone(namespace: str, monitor: str) -> None:
    """Drop a deleted ModelMonitor's series: an alert it raised must not stay active after it."""
    labels = {"namespace": namespace, "monitor": monitor}
    with _lock:
        _performance.pop((namespace, monitor), None)
        for metric in (DRIFT_SCORE, ALERT_ACTIVE, ERROR_RATE, PERFORMANCE, RETRAINS):
            metric.remove_by_labels(labels)
