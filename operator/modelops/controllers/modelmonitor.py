"""ModelMonitor: every `spec.interval`, read the serving pods' counters, judge the last window (drift per
feature, error rate, latency), raise and clear alerts (conditions, Events, operator metrics), and retrain."""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import time
from collections import deque
from typing import Any

import fsspec
import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelMonitor
from modelops.api.v1alpha1.common import duration_seconds
from modelops.resources import modeldeployment as serving
from modelops.resources import modelmonitor as rules
from modelops.resources.alerts import webhook_payload
from modelops.resources.conditions import kstatus, now, set_condition
from modelops.resources.measure import ServingTotals, serving_totals

from . import kube, pods, prometheus, webhook
from .metrics import ALERT_ACTIVE, DRIFT_SCORE, ERROR_RATE, RETRAINS

KIND = "ModelMonitor"
#: Each monitor's recent scrapes (time, totals), to take windows of cumulative counters; lost on restart,
#: after which the first window is everything the pods counted.
_snapshots: dict[str, deque[tuple[float, ServingTotals]]] = {}
_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def _baseline(uri: str) -> dict[str, Any]:
    with fsspec.open(uri, "r") as handle:
        return json.load(handle)


@kopf.on.resume(GROUP, VERSION, "modelmonitors")
@kopf.on.create(GROUP, VERSION, "modelmonitors")
@kopf.on.update(GROUP, VERSION, "modelmonitors", field="spec")
def rule_wanted(body: kopf.Body, **_: Any) -> None:
    """Generate the PrometheusRule when asked and when the Prometheus Operator's CRD exists; say so when it does not."""
    monitor = ModelMonitor.model_validate(dict(body))
    namespace, name = monitor.metadata.namespace or "", monitor.metadata.name
    wanted = bool(monitor.spec.alerts and monitor.spec.alerts.prometheus_rule)
    if not kube.served("monitoring.coreos.com/v1", "PrometheusRule"):
        if wanted:
            kopf.warn(
                dict(body),
                reason="PrometheusRuleUnavailable",
                message="spec.alerts.prometheusRule: the PrometheusRule CRD (monitoring.coreos.com/v1) is not installed",
            )
        return
    if not wanted:
        kube.delete("monitoring.coreos.com/v1", "PrometheusRule", namespace, name)
        return
    deployment = kube.get(API_VERSION, "ModelDeployment", namespace, monitor.spec.deployment)
    model = (deployment or {}).get("spec", {}).get("model") or monitor.spec.deployment
    kube.apply(rules.prometheus_rule(monitor, model))


@kopf.daemon(GROUP, VERSION, "modelmonitors", cancellation_timeout=5)
def watch(stopped: kopf.DaemonStopped, namespace: str, name: str, uid: str, **_: Any) -> None:
    while not stopped:
        body = kube.get(API_VERSION, KIND, namespace, name)
        if body is None:
            return
        monitor = ModelMonitor.model_validate(body)
        try:
            check(monitor, body, uid)
        except Exception as error:  # the daemon must outlive a failed check: report it, try at the next interval
            kopf.warn(body, reason="CheckFailed", message=f"the check failed: {type(error).__name__}")
        stopped.wait(duration_seconds(monitor.spec.interval))


def check(monitor: ModelMonitor, body: dict[str, Any], uid: str) -> None:
    namespace = monitor.metadata.namespace or ""
    old = body.get("status") or {}
    deployment = kube.get(API_VERSION, "ModelDeployment", namespace, monitor.spec.deployment)
    serving_version = (deployment or {}).get("status", {}).get("servingVersion")
    version = kube.get(API_VERSION, "ModelVersion", namespace, serving_version) if serving_version else None
    baseline_uri = (version or {}).get("spec", {}).get("baselineUri")
    generation = monitor.metadata.generation
    if not baseline_uri:
        why = f"spec.deployment: {monitor.spec.deployment} serves no version with a baseline yet"
        status = {
            "observedGeneration": generation,
            "conditions": kstatus(old.get("conditions"), "Stalled", "NothingToWatch", why, generation),
        }
        kube.patch_status(API_VERSION, KIND, namespace, monitor.metadata.name, status)
        return

    source = monitor.spec.source
    if source and source.type == "Prometheus":
        record = version["spec"]  # type: ignore[index]
        window = prometheus.query_totals(
            source.prometheus_url or "", record["model"], str(record["version"]), monitor.spec.window
        )
    else:
        labels = {"app.kubernetes.io/instance": monitor.spec.deployment, "app.kubernetes.io/component": serving.SERVER}
        port = ((deployment or {}).get("spec", {}).get("runtime") or {}).get("port", 3000)
        texts = [pods.scrape(p, port) for p in kube.list_("v1", "Pod", namespace, labels) if pods.ready(p)]
        window = _window(uid, serving_totals(texts), duration_seconds(monitor.spec.window))
    if window.problem:
        status = {
            "conditions": kstatus(old.get("conditions"), "Stalled", "MetricsUnavailable", window.problem, generation)
        }
        kube.patch_status(API_VERSION, KIND, namespace, monitor.metadata.name, status)
        return
    judgement = rules.judge(monitor, _baseline(baseline_uri), window)
    _report(monitor, body, deployment, judgement, old)


def _window(uid: str, totals: ServingTotals, seconds: float) -> ServingTotals:
    """The counts of (about) the last `seconds`: the newest scrape minus the newest one at least that old."""
    moment = time.monotonic()
    with _lock:
        history = _snapshots.setdefault(uid, deque())
        history.append((moment, totals))
        while len(history) > 1 and history[1][0] <= moment - seconds:
            history.popleft()
        reference = history[0][1] if len(history) > 1 and history[0][0] <= moment - seconds * 0.5 else None
    return rules.window_delta(reference, totals)


def _report(
    monitor: ModelMonitor,
    body: dict[str, Any],
    deployment: dict[str, Any] | None,
    judgement: rules.Judgement,
    old: dict[str, Any],
) -> None:
    namespace, name = monitor.metadata.namespace or "", monitor.metadata.name
    generation = monitor.metadata.generation
    when = now()
    previous = {a["name"]: a for a in old.get("activeAlerts") or []}
    active = [
        {"name": alert, "since": previous.get(alert, {}).get("since", when), "message": message}
        for alert, message in judgement.alerts.items()
    ]
    conditions = old.get("conditions")
    sink = monitor.spec.alerts.webhook if monitor.spec.alerts else None
    for alert in rules.ALERTS:
        raised = alert in judgement.alerts
        conditions = set_condition(
            conditions,
            alert,
            raised,
            alert if raised else "Normal",
            judgement.alerts.get(alert, "within limits"),
            generation,
        )
        ALERT_ACTIVE.labels(namespace, name, alert).set(1 if raised else 0)
        if raised != (alert in previous):
            kind, verb = ("Warning", "raised") if raised else ("Normal", "cleared")
            message = f"{alert} {verb}: {judgement.alerts.get(alert, 'back within limits')}"
            kopf.event(body, type=kind, reason=alert if raised else f"{alert}Cleared", message=message)
            if deployment:
                kopf.event(
                    deployment, type=kind, reason=alert if raised else f"{alert}Cleared", message=f"{name}: {message}"
                )
            url = sink and webhook.secret_value(namespace, sink.url_secret_ref.name, sink.url_secret_ref.key)
            if url:  # the Secret is read only when an alert changes, not at every check
                payload = webhook_payload(
                    namespace=namespace,
                    monitor=name,
                    deployment=monitor.spec.deployment,
                    alert=alert,
                    firing=raised,
                    message=judgement.alerts.get(alert) or previous[alert]["message"],
                    since=previous.get(alert, {}).get("since", when),
                    now=when,
                )
                webhook.send(url, payload, f"{namespace}/{name} {alert}")
    summary = f"{judgement.requests:.0f} requests in the window; " + (
        "; ".join(judgement.alerts.values()) if judgement.alerts else "no alerts"
    )
    conditions = kstatus(conditions, "Ready", "Checked", summary, generation)
    for feature in judgement.features:
        if feature.score is not None:
            DRIFT_SCORE.labels(namespace, name, feature.feature, feature.method).set(feature.score)
    if judgement.error_rate is not None:
        ERROR_RATE.labels(namespace, name).set(judgement.error_rate)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "lastCheckTime": when,
        "samples": int(judgement.requests),
        "features": [
            {
                k: v
                for k, v in {
                    "feature": f.feature,
                    "method": f.method,
                    "score": f.score,
                    "pValue": f.p_value,
                    "samples": f.samples,
                    "verdict": f.verdict,
                }.items()
                if v is not None
            }
            for f in judgement.features
        ],
        "driftedShare": judgement.dataset.share,
        "errorRate": judgement.error_rate,
        "latency": judgement.latency,
        "activeAlerts": active,
        "conditions": conditions,
    }
    retrain = _retrain(monitor, judgement, old, when)
    if retrain:
        status["lastRetrain"] = retrain
    kube.patch_status(API_VERSION, KIND, namespace, name, status)


def _retrain(
    monitor: ModelMonitor, judgement: rules.Judgement, old: dict[str, Any], when: str
) -> dict[str, Any] | None:
    """A ModelBuild from the template on drift, at most once per cooldown; its name says which check made it."""
    spec = monitor.spec.retrain
    if spec is None or not spec.enabled or "DriftDetected" not in judgement.alerts:
        return None
    last = (old.get("lastRetrain") or {}).get("time")
    if last:
        elapsed = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()
        if elapsed < duration_seconds(spec.cooldown):
            return None
    template = spec.template.to_api()
    if spec.dataset_uri:
        template["dataset"]["uri"] = spec.dataset_uri
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    name = f"{monitor.metadata.name}-retrain-{stamp}"[:63]
    build = {
        "apiVersion": API_VERSION,
        "kind": "ModelBuild",
        "metadata": {
            "name": name,
            "namespace": monitor.metadata.namespace,
            "labels": {"app.kubernetes.io/managed-by": "modelops", "modelops.io/monitor": monitor.metadata.name},
        },
        "spec": template,
    }
    if kube.create(build) is None:
        return None
    reason = judgement.alerts["DriftDetected"]
    RETRAINS.labels(monitor.metadata.namespace, monitor.metadata.name).inc()
    kopf.event(monitor.to_api(), type="Normal", reason="Retraining", message=f"created ModelBuild {name}: {reason}")
    return {"build": name, "time": when, "reason": reason}
