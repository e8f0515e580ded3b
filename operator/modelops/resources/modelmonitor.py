"""A ModelMonitor's judgement of one window (drift per feature, error rate, latency, and the alerts they raise) and
what follows from it: which alerts are raised or cleared, what is told and delivered, whether to retrain, and the
status. Pure, as the rollout is: the controller measures, calls `judge` and `report`, and applies what they say.

The controller brings the live counts of the window and the training baseline, both as the serving pods export
them (the baseline from the model file they verified), so the operator itself reads no file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, get_args

from modelops.api.v1alpha1 import API_VERSION, ModelMonitor, ModelMonitorStatus
from modelops.api.v1alpha1.common import duration_seconds
from modelops.api.v1alpha1.modelmonitor import (
    ActiveAlert,
    AlertName,
    AlertNotice,
    ErrorRateSpec,
    LatencySpec,
    RetrainRecord,
    VersionPerformance,
    WebhookDelivery,
)
from modelops.api.v1alpha1.modelmonitor import FeatureDrift as FeatureDriftStatus
from modelops.contract import serving as wire
from modelops.drift import DatasetDrift, FeatureDrift, dataset_drift, feature_drift

from . import meta, outbox
from .alerts import webhook_condition, webhook_payload
from .conditions import kstatus, set_condition
from .events import Event
from .measure import ServingTotals, aligned, latency_quantile
from .quality import Served, assess

ALERTS: tuple[AlertName, ...] = get_args(AlertName)


@dataclass
class Judgement:
    features: list[FeatureDrift]
    dataset: DatasetDrift
    requests: float
    error_rate: float | None
    latency: float | None
    #: Alert name → message, for the alerts that are raised now.
    alerts: dict[AlertName, str] = field(default_factory=dict)
    #: What each served version is worth (with `spec.performance`): stable first.
    performance: list[VersionPerformance] = field(default_factory=list)


def judge(monitor: ModelMonitor, window: ServingTotals, served: tuple[Served, ...] = ()) -> Judgement:
    """The window's verdicts against the baseline the window carries (`window.baseline`), and, with
    `spec.performance`, each served version's worth against its held-out metric (only the stable version's
    raises an alert: a canary's is its rollout's to judge)."""
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
                    method=(override.method if override and override.method else default),
                    edges=bins.edges,
                    threshold=(
                        override.threshold if override and override.threshold else (drift.threshold if drift else None)
                    ),
                    min_samples=drift.min_samples if drift else 200,
                )
            )
    overall = dataset_drift(results, drift.dataset_drift_share if drift else 0.5)
    alerts: dict[AlertName, str] = {}
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
    performance: list[VersionPerformance] = []
    if spec.performance is not None:
        for version in served:
            worth, degraded = assess(spec.performance, version)
            performance.append(worth)
            if degraded and version.track == "stable":
                alerts["PerformanceDegraded"] = degraded
    return Judgement(results, overall, window.requests, error_rate, latency, alerts, performance)


@dataclass(frozen=True)
class Webhook:
    """The monitor's webhook as the controller found it: configured or not, usable or not (`problem` names the
    field: its Secret, key or URL). Whether its receiver takes what it is sent is the outbox's (`status.webhook`)."""

    configured: bool = False
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.configured and self.problem is None


@dataclass(frozen=True)
class Report:
    """What one judged window changes, for the controller to apply."""

    status: ModelMonitorStatus
    #: Told on the monitor; the deployment hears the same, named after the monitor. (The changes the webhook is to
    #: deliver are queued in `status.webhook`, when it is usable.)
    events: list[Event]
    #: Every alert, raised now or not (the operator's gauges).
    raised: dict[AlertName, bool]
    #: Whether to start a retraining now (drift, retraining enabled, no retraining or refusal in the cooldown).
    retrain: bool


def watched_alerts(monitor: ModelMonitor) -> tuple[AlertName, ...]:
    """The alerts a monitor can raise or has to clear: PerformanceDegraded only when it holds versions to their
    performance, or was raised before that was taken out of the spec."""
    active = {a.name for a in (monitor.status.active_alerts or [])} if monitor.status else set()
    return tuple(a for a in ALERTS if a != "PerformanceDegraded" or monitor.spec.performance is not None or a in active)


def report(
    monitor: ModelMonitor,
    judgement: Judgement,
    webhook: Webhook,
    rule_problem: str | None,
    when: dt.datetime,
    retrain_refused: dt.datetime | None = None,
) -> Report:
    """Alerts raised and cleared against the last status, what to tell and deliver, the conditions and the status."""
    old = monitor.status or ModelMonitorStatus()
    generation = monitor.metadata.generation
    previous = {a.name: a for a in old.active_alerts or []}
    conditions = old.conditions
    events: list[Event] = []
    notices: list[AlertNotice] = []
    watched = watched_alerts(monitor)
    for alert in watched:
        raised = alert in judgement.alerts
        message = judgement.alerts.get(alert)
        conditions = set_condition(
            conditions, alert, raised, alert if raised else "Normal", message or "within limits", generation
        )
        if raised == (alert in previous):
            continue
        verb = "raised" if raised else "cleared"
        events.append(
            (
                "Warning" if raised else "Normal",
                alert if raised else f"{alert}Cleared",
                f"{alert} {verb}: {message or 'back within limits'}",
            )
        )
        if webhook.usable:
            since = previous[alert].since if alert in previous else when
            notices.append(
                AlertNotice(
                    alert=alert, firing=raised, since=since, at=when, message=message or previous[alert].message
                )
            )
    waiting = outbox.queued(old.webhook, notices) if webhook.configured else None
    conditions = set_condition(conditions, "WebhookDelivered", *_webhook_condition(webhook, waiting), generation)
    summary = f"{judgement.requests:.0f} requests in the window; " + (
        "; ".join(judgement.alerts.values()) if judgement.alerts else "no alerts"
    )
    problem = webhook.problem or rule_problem
    if problem:  # alerts would be lost: not Ready, saying which field to fix
        reason = "WebhookUnavailable" if webhook.problem else "PrometheusRuleUnavailable"
        conditions = kstatus(conditions, "Stalled", reason, f"{problem}; {summary}", generation)
    else:
        conditions = kstatus(conditions, "Ready", "Checked", summary, generation)
    status = old.updated(
        observed_generation=generation,
        last_check_time=when,
        samples=int(judgement.requests),
        features=[
            FeatureDriftStatus(
                feature=f.feature,
                method=f.method,
                score=f.score,
                p_value=f.p_value,
                samples=f.samples,
                verdict=f.verdict,
            )
            for f in judgement.features
        ],
        drifted_share=judgement.dataset.share,
        error_rate=judgement.error_rate,
        latency=judgement.latency,
        performance=judgement.performance or None,
        active_alerts=[
            ActiveAlert(name=alert, since=previous[alert].since if alert in previous else when, message=message)
            for alert, message in judgement.alerts.items()
        ],
        conditions=conditions,
        webhook=waiting,
    )
    retrain = _retrain_due(monitor, judgement, old, when, retrain_refused)
    return Report(status, events, {a: a in judgement.alerts for a in watched}, retrain)


def delivered(
    monitor: ModelMonitor, status: ModelMonitorStatus, webhook: Webhook, waiting: WebhookDelivery | None
) -> ModelMonitorStatus:
    """The status with the outbox as a delivery (or a failed attempt) left it, and `WebhookDelivered` told again."""
    said = _webhook_condition(webhook, waiting)
    return status.updated(
        webhook=waiting,
        conditions=set_condition(status.conditions, "WebhookDelivered", *said, monitor.metadata.generation),
    )


def _webhook_condition(webhook: Webhook, waiting: WebhookDelivery | None) -> tuple[bool, str, str]:
    return webhook_condition(webhook.configured, webhook.problem, outbox.failure(waiting))


def payload(monitor: ModelMonitor, notice: AlertNotice) -> dict[str, Any]:
    """The Alertmanager-style payload of one change: the same however often it is sent."""
    return webhook_payload(
        namespace=monitor.metadata.namespace or "",
        monitor=monitor.metadata.name,
        deployment=monitor.spec.deployment,
        alert=notice.alert,
        firing=notice.firing,
        message=notice.message,
        since=_rfc3339(notice.since),
        now=_rfc3339(notice.at),
    )


def stalled(monitor: ModelMonitor, reason: str, message: str) -> ModelMonitorStatus:
    """The status of a check that could not judge (nothing served yet, no metrics): only the conditions change."""
    old = monitor.status or ModelMonitorStatus()
    generation = monitor.metadata.generation
    return old.updated(
        observed_generation=generation, conditions=kstatus(old.conditions, "Stalled", reason, message, generation)
    )


def unmeasured(monitor: ModelMonitor, message: str) -> ModelMonitorStatus:
    """The status of a check too soon after this process began to read the pods' counters to tell the window
    (`measure.counts_over`): what the last check said stands, alerts included, rather than flap them at every
    restart or takeover; a monitor never checked says it is Reconciling."""
    old = monitor.status or ModelMonitorStatus()
    if old.last_check_time is not None:
        return old
    generation = monitor.metadata.generation
    return old.updated(
        observed_generation=generation,
        conditions=kstatus(old.conditions, "Reconciling", "WindowFilling", message, generation),
    )


def _retrain_due(
    monitor: ModelMonitor,
    judgement: Judgement,
    old: ModelMonitorStatus,
    when: dt.datetime,
    refused: dt.datetime | None,
) -> bool:
    """On an alert it is told to retrain on, at most once per cooldown; a refused one (the approval policy, say)
    counts too, so it is reported once per cooldown, never retried at every check."""
    spec = monitor.spec.retrain
    if spec is None or not spec.enabled or retrain_reason(monitor, judgement) is None:
        return False
    cooldown = duration_seconds(spec.cooldown)
    last = old.last_retrain.time if old.last_retrain else None
    return all(t is None or (when - t).total_seconds() >= cooldown for t in (last, refused))


def retrain_reason(monitor: ModelMonitor, judgement: Judgement) -> str | None:
    """The raised alert that asks for a retraining (`spec.retrain.on`), said as it was raised."""
    spec = monitor.spec.retrain
    raised = [f"{a}: {judgement.alerts[a]}" for a in (spec.on if spec else []) if a in judgement.alerts]
    return "; ".join(raised) or None


def retrain_build(monitor: ModelMonitor, when: dt.datetime) -> dict[str, Any]:
    """The ModelBuild from the template; its name says which check made it."""
    spec = monitor.spec.retrain
    assert spec is not None, "only a monitor that retrains makes a build"
    template = spec.template.to_api()
    if spec.dataset_uri:
        template["dataset"]["uri"] = spec.dataset_uri
    name = meta.child_name(monitor.metadata.name, f"retrain-{when:%Y%m%d%H%M%S}")
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelBuild",
        "metadata": {
            "name": name,
            "namespace": monitor.metadata.namespace,
            "labels": {"app.kubernetes.io/managed-by": meta.MANAGED_BY, meta.MONITOR_LABEL: monitor.metadata.name},
        },
        "spec": template,
    }


def retrained(status: ModelMonitorStatus, build: str, reason: str, when: dt.datetime) -> ModelMonitorStatus:
    """The status once the retraining's build exists."""
    return status.updated(last_retrain=RetrainRecord(build=build, time=when, reason=reason))


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prometheus_rule(monitor: ModelMonitor, model: str) -> dict[str, Any]:
    """The monitor's limits as Prometheus alerting rules, for teams whose alerts live in Alertmanager.

    Error rate and latency are computed from the serving pods' own metrics, of this namespace only (the `namespace`
    label Prometheus attaches to the pods' series); drift and performance from the operator's
    `modelops_monitor_alert_active` gauge."""
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

    def judged_by_operator(alert_name: str, summary: str) -> dict[str, Any]:
        raised = f'namespace="{namespace}",monitor="{name}",alert="{alert_name}"'
        return alert(alert_name, f"modelops_monitor_alert_active{{{raised}}} == 1", summary)

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
                            f"sum(increase({wire.ERRORS}_total{{{served}}}[{window}])) / "
                            f"sum(increase({wire.REQUESTS}_total{{{served}}}[{window}])) > {limits.max}",
                            f"{model}: error rate above {limits.max:.1%}",
                        ),
                        alert(
                            "LatencyHigh",
                            f"histogram_quantile({slow.quantile}, sum by (le) "
                            f"(rate({wire.LATENCY}_bucket{{{served}}}[{window}]))) > "
                            f"{duration_seconds(slow.max)}",
                            f"{model}: p{slow.quantile * 100:g} latency above {slow.max}",
                        ),
                        judged_by_operator("DriftDetected", f"{model}: data drift detected by ModelMonitor {name}"),
                        *(
                            [
                                judged_by_operator(
                                    "PerformanceDegraded",
                                    f"{model}: {spec.performance.metric} below its held-out value, as ModelMonitor "
                                    f"{name} estimates or measures it",
                                )
                            ]
                            if spec.performance
                            else []
                        ),
                    ],
                }
            ]
        },
    }
