"""ModelMonitor: every `spec.interval`, read the serving pods' counters and the baseline they carry (or ask an
allowed Prometheus for both), judge the last window (drift per feature, error rate, latency), raise and clear alerts
(conditions, Events, operator metrics, webhook), and retrain. The operator opens no file or URL a spec names."""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from typing import Any

import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelMonitor
from modelops.api.v1alpha1.common import duration_seconds
from modelops.resources import meta
from modelops.resources import modeldeployment as serving
from modelops.resources import modelmonitor as rules
from modelops.resources.alerts import webhook_condition, webhook_payload
from modelops.resources.conditions import kstatus, now, set_condition
from modelops.resources.measure import Scope, ServingTotals, serving_totals

from . import kube, pods, prometheus, webhook
from .config import POLICY
from .metrics import ALERT_ACTIVE, DRIFT_SCORE, ERROR_RATE, RETRAINS

KIND = "ModelMonitor"
PROMETHEUS_RULE = ("monitoring.coreos.com/v1", "PrometheusRule")


@kopf.on.resume(GROUP, VERSION, "modelmonitors")
@kopf.on.create(GROUP, VERSION, "modelmonitors")
@kopf.on.update(GROUP, VERSION, "modelmonitors", field="spec")
def rule_wanted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Generate the PrometheusRule when asked and when the Prometheus Operator's CRD exists; say so when it does not.
    A problem is kept in the object's memo, and the next check writes it as a condition."""
    monitor = ModelMonitor.model_validate(dict(body))
    namespace, name = monitor.metadata.namespace or "", monitor.metadata.name
    wanted = bool(monitor.spec.alerts and monitor.spec.alerts.prometheus_rule)
    memo.rule_problem = None
    if not kube.served(*PROMETHEUS_RULE):
        if wanted:
            memo.rule_problem = (
                "spec.alerts.prometheusRule: the PrometheusRule CRD (monitoring.coreos.com/v1) is not installed"
            )
            kopf.warn(dict(body), reason="PrometheusRuleUnavailable", message=memo.rule_problem)
        return
    if not wanted:
        kube.delete_child(*PROMETHEUS_RULE, namespace, name, monitor.metadata.uid or "")
        return
    deployment = kube.get(API_VERSION, "ModelDeployment", namespace, monitor.spec.deployment)
    model = (deployment or {}).get("spec", {}).get("model") or monitor.spec.deployment
    try:
        kube.apply_child(rules.prometheus_rule(monitor, model))
    except (kube.NotOwned, kube.Refused) as error:
        memo.rule_problem = f"spec.alerts.prometheusRule: {error}"
        kopf.warn(dict(body), reason="PrometheusRuleRefused", message=memo.rule_problem)


@kopf.daemon(GROUP, VERSION, "modelmonitors", cancellation_timeout=5)
def watch(stopped: kopf.DaemonStopped, namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    while not stopped:
        body = kube.get(API_VERSION, KIND, namespace, name)
        if body is None:
            webhook.forget(f"{namespace}/{name}")
            return
        monitor = ModelMonitor.model_validate(body)
        try:
            check(monitor, body, memo)
        except Exception as error:  # the daemon must outlive a failed check: report it, try at the next interval
            kopf.warn(body, reason="CheckFailed", message=f"the check failed: {type(error).__name__}")
        stopped.wait(duration_seconds(monitor.spec.interval))


def check(monitor: ModelMonitor, body: dict[str, Any], memo: kopf.Memo) -> None:
    namespace = monitor.metadata.namespace or ""
    old = body.get("status") or {}
    deployment = kube.get(API_VERSION, "ModelDeployment", namespace, monitor.spec.deployment)
    served = (deployment or {}).get("status", {})
    number = served.get("servingVersionNumber")
    if number is None:
        why = f"spec.deployment: {monitor.spec.deployment} serves no version yet"
        return _stalled(monitor, old, "NothingToWatch", why)
    window = _measure(monitor, deployment or {}, str(number), memo)
    if window.problem:
        return _stalled(monitor, old, "MetricsUnavailable", window.problem)
    if not window.baseline:
        why = f"no ready pod of {monitor.spec.deployment} exports its version {number}'s baseline yet"
        return _stalled(monitor, old, "MetricsUnavailable", why)
    _report(monitor, body, deployment, rules.judge(monitor, window), old, memo)


def _measure(monitor: ModelMonitor, deployment: dict[str, Any], version: str, memo: kopf.Memo) -> ServingTotals:
    """The window's counts and the baseline: from an allowed Prometheus, or from the serving pods themselves."""
    source = monitor.spec.source
    if source and source.type == "Prometheus":
        if not POLICY.prometheus_allowed(source.prometheus_url or ""):
            return ServingTotals(problem=serving.PROMETHEUS_NOT_ALLOWED.format(field="spec.source.prometheusUrl"))
        scope = Scope(monitor.metadata.namespace or "", deployment["spec"]["model"], version)
        return prometheus.query_totals(source.prometheus_url or "", scope, monitor.spec.window)
    labels = {"app.kubernetes.io/instance": monitor.spec.deployment, "app.kubernetes.io/component": serving.SERVER}
    port = (deployment.get("spec", {}).get("runtime") or {}).get("port", 3000)
    ready = [p for p in kube.list_("v1", "Pod", monitor.metadata.namespace or "", labels) if pods.ready(p)]
    totals = serving_totals([pods.scrape(p, port) for p in ready], version=version)
    return _window(memo, version, totals, duration_seconds(monitor.spec.window))


def _window(memo: kopf.Memo, version: str, totals: ServingTotals, seconds: float) -> ServingTotals:
    """The counts of (about) the last `seconds`: the newest scrape minus the newest one at least that old. The
    scrapes live in the object's memo (lost on restart: the first window is then everything the pods counted)
    and start afresh when the served version changes."""
    moment = time.monotonic()
    if getattr(memo, "version", None) != version:
        memo.version, memo.snapshots = version, deque()
    history: deque[tuple[float, ServingTotals]] = memo.snapshots
    history.append((moment, totals))
    while len(history) > 1 and history[1][0] <= moment - seconds:
        history.popleft()
    reference = history[0][1] if len(history) > 1 and history[0][0] <= moment - seconds * 0.5 else None
    return rules.window_delta(reference, totals)


def _stalled(monitor: ModelMonitor, old: dict[str, Any], reason: str, message: str) -> None:
    generation = monitor.metadata.generation
    status = {
        "observedGeneration": generation,
        "conditions": kstatus(old.get("conditions"), "Stalled", reason, message, generation),
    }
    kube.patch_status(API_VERSION, KIND, monitor.metadata.namespace or "", monitor.metadata.name, status)


def _report(
    monitor: ModelMonitor,
    body: dict[str, Any],
    deployment: dict[str, Any] | None,
    judgement: rules.Judgement,
    old: dict[str, Any],
    memo: kopf.Memo,
) -> None:
    namespace, name = monitor.metadata.namespace or "", monitor.metadata.name
    key = f"{namespace}/{name}"
    generation = monitor.metadata.generation
    when = now()
    previous = {a["name"]: a for a in old.get("activeAlerts") or []}
    active = [
        {"name": alert, "since": previous.get(alert, {}).get("since", when), "message": message}
        for alert, message in judgement.alerts.items()
    ]
    sink = monitor.spec.alerts.webhook if monitor.spec.alerts else None
    url, sink_problem = webhook.receiver(namespace, sink.url_secret_key) if sink else (None, None)
    conditions = old.get("conditions")
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
            if url:
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
                webhook.send(webhook.Delivery(url, payload, key, f"{alert} {'firing' if raised else 'resolved'}"))
    delivered = webhook_condition(sink is not None, sink_problem, webhook.last_failure(key) if url else None)
    conditions = set_condition(conditions, "WebhookDelivered", *delivered, generation)
    summary = f"{judgement.requests:.0f} requests in the window; " + (
        "; ".join(judgement.alerts.values()) if judgement.alerts else "no alerts"
    )
    problem = sink_problem or getattr(memo, "rule_problem", None)
    if problem:  # alerts would be lost: not Ready, saying which field to fix
        reason = "WebhookUnavailable" if sink_problem else "PrometheusRuleUnavailable"
        conditions = kstatus(conditions, "Stalled", reason, f"{problem}; {summary}", generation)
    else:
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
    retrain = _retrain(monitor, judgement, old, when, memo)
    if retrain:
        status["lastRetrain"] = retrain
    kube.patch_status(API_VERSION, KIND, namespace, name, status)


def _retrain(
    monitor: ModelMonitor, judgement: rules.Judgement, old: dict[str, Any], when: str, memo: kopf.Memo
) -> dict[str, Any] | None:
    """A ModelBuild from the template on drift, at most once per cooldown; its name says which check made it.
    A refused one (the approval policy, say) is reported once per cooldown too, never retried at every check."""
    spec = monitor.spec.retrain
    if spec is None or not spec.enabled or "DriftDetected" not in judgement.alerts:
        return None
    for last in ((old.get("lastRetrain") or {}).get("time"), getattr(memo, "retrain_refused", None)):
        if last and _since(last) < duration_seconds(spec.cooldown):
            return None
    template = spec.template.to_api()
    if spec.dataset_uri:
        template["dataset"]["uri"] = spec.dataset_uri
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    name = meta.child_name(monitor.metadata.name, f"retrain-{stamp}")
    build = {
        "apiVersion": API_VERSION,
        "kind": "ModelBuild",
        "metadata": {
            "name": name,
            "namespace": monitor.metadata.namespace,
            "labels": {"app.kubernetes.io/managed-by": meta.MANAGED_BY, meta.MONITOR_LABEL: monitor.metadata.name},
        },
        "spec": template,
    }
    try:
        created = kube.create(build)
    except kube.Refused as error:
        memo.retrain_refused = when
        kopf.warn(monitor.to_api(), reason="RetrainRefused", message=f"spec.retrain.template: {error}")
        return None
    if created is None:
        return None
    reason = judgement.alerts["DriftDetected"]
    RETRAINS.labels(monitor.metadata.namespace, monitor.metadata.name).inc()
    kopf.event(monitor.to_api(), type="Normal", reason="Retraining", message=f"created ModelBuild {name}: {reason}")
    return {"build": name, "time": when, "reason": reason}


def _since(moment: str) -> float:
    """Seconds since an RFC 3339 time the operator wrote."""
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))).total_seconds()
