"""ModelMonitor: every `spec.interval`, read the serving pods' counters and the baseline they carry (or ask an
allowed Prometheus for both), judge the last window (drift per feature, error rate, latency), raise and clear alerts
(conditions, Events, operator metrics, webhook), and retrain. The operator opens no file or URL a spec names.

What a monitor remembers between checks lives in its Kopf memo (gone with the object): the scrapes of the window,
a PrometheusRule problem, and when a retraining was last refused. Its webhook's outbox lives in its status, so that
no alert change is lost to a restart."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import kopf

from modelops.api.v1alpha1 import (
    API_VERSION,
    GROUP,
    VERSION,
    ModelDeploymentStatus,
    ModelMonitor,
    ModelMonitorStatus,
    ModelVersion,
)
from modelops.api.v1alpha1.common import Track, duration_seconds
from modelops.api.v1alpha1.modelmonitor import AlertName
from modelops.contract.serving import SERVER_PORT
from modelops.resources import modeldeployment as serving
from modelops.resources import modelmonitor as rules
from modelops.resources import outbox
from modelops.resources.conditions import now
from modelops.resources.measure import Scope, Scrape, ServingTotals, counts_over, serving_totals
from modelops.resources.quality import Served, with_labels_of

from . import kube, pods, prometheus, spawning, webhook
from .config import POLICY
from .events import tell
from .metrics import ALERT_ACTIVE, DRIFT_SCORE, ERROR_RATE, RETRAINS, monitor_gone, monitor_performance
from .settings import HANDLER_THREADS

KIND = "ModelMonitor"
T = TypeVar("T")
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
            tell(body, "Warning", "PrometheusRuleUnavailable", memo.rule_problem)
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
        tell(body, "Warning", "PrometheusRuleRefused", memo.rule_problem)


@dataclass(frozen=True)
class Checked:
    """A check's outcome, for the daemon to deliver and write: the monitor as read, and its status as judged."""

    monitor: ModelMonitor
    body: dict[str, Any]
    status: ModelMonitorStatus | None  # None when the check failed (and said so)
    url: str | None
    hook: rules.Webhook


@kopf.daemon(GROUP, VERSION, "modelmonitors", cancellation_timeout=5, when=spawning.while_alive())
async def watch(stopped: kopf.DaemonStopped, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A check takes a handler thread only while it runs, and a receiver is awaited without one. (A synchronous
    daemon holds one of Kopf's threads for its whole life: as many monitors as threads, in any namespace, and no
    other handler of the operator ran again.)"""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # Kopf's, for `kopf.event`; one call at a time runs in it

    def threaded(function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return loop.run_in_executor(HANDLER_THREADS, context.run, function, *args)

    gone = False
    while not stopped:
        checked = await threaded(check, namespace or "", name, memo)
        if checked is None:
            gone = True
            break
        if checked.status is not None:
            try:
                await _deliver(checked, threaded)
            except Exception as error:  # as a failed check: said, and tried again at the next interval
                await threaded(
                    tell, checked.body, "Warning", "CheckFailed", f"the check failed: {type(error).__name__}"
                )
        await stopped.wait(duration_seconds(checked.monitor.spec.interval))
    if gone or not spawning.alive(memo):  # deleted, not paused or stopping: its alerts end with it
        monitor_gone(namespace or "", name)


def check(namespace: str, name: str, memo: kopf.Memo) -> Checked | None:
    """Read the monitor, judge its window and act on it but for its status; None once the monitor is gone."""
    body = kube.get(API_VERSION, KIND, namespace, name)
    if body is None:
        return None
    monitor = ModelMonitor.model_validate(body)
    sink = monitor.spec.alerts.webhook if monitor.spec.alerts else None
    url, hook, status = None, rules.Webhook(sink is not None), None
    try:
        url, problem = webhook.receiver(namespace, sink.url_secret_key) if sink else (None, None)
        hook = rules.Webhook(sink is not None, problem)
        status = _judged(monitor, body, memo, hook)
    except Exception as error:  # the daemon must outlive a failed check: report it, try at the next interval
        tell(body, "Warning", "CheckFailed", f"the check failed: {type(error).__name__}")
    return Checked(monitor, body, status, url, hook)


def _judged(monitor: ModelMonitor, body: dict[str, Any], memo: kopf.Memo, hook: rules.Webhook) -> ModelMonitorStatus:
    """Fetch what is served, measure its window, judge it, plan the report, and apply it but for its status."""
    namespace = monitor.metadata.namespace or ""
    deployment = kube.get(API_VERSION, "ModelDeployment", namespace, monitor.spec.deployment)
    number = (deployment or {}).get("status", {}).get("servingVersionNumber")
    if deployment is None or number is None:
        why = f"spec.deployment: {monitor.spec.deployment} serves no version yet"
        return rules.stalled(monitor, "NothingToWatch", why)
    versions = _served(monitor, deployment)
    numbers = [str(number), *(str(v.spec.version) for v, _ in versions)]
    measured = _measure(monitor, deployment, numbers, memo)
    if measured is None:
        why = f"the window ({monitor.spec.window}) fills: this operator began reading the pods' counters lately"
        return rules.unmeasured(monitor, why)
    windows, labels = measured
    window = windows[str(number)]
    if window.problem or not window.baseline:
        why = window.problem or f"no ready pod of {monitor.spec.deployment} exports its version {number}'s baseline yet"
        return rules.stalled(monitor, "MetricsUnavailable", why)
    served = tuple(
        Served(
            v.metadata.name,
            track,
            v.spec.metrics,
            with_labels_of(windows[str(v.spec.version)].quality, labels[str(v.spec.version)].quality),
        )
        for v, track in versions
    )
    judgement = rules.judge(monitor, window, served)
    when = now()
    planned = rules.report(
        monitor, judgement, hook, getattr(memo, "rule_problem", None), when, getattr(memo, "retrain_refused", None)
    )
    status = planned.status
    reason = rules.retrain_reason(monitor, judgement)
    if planned.retrain and reason:
        created = _retrain(monitor, body, reason, when, memo)
        status = rules.retrained(status, created, reason, when) if created else status
    model = deployment["spec"]["model"]
    for type_, reason, message in planned.events:
        tell(body, type_, reason, message, model=model)
        tell(deployment, type_, reason, f"{monitor.metadata.name}: {message}", audit=False)
    _export(monitor, judgement, planned.raised)
    return status


async def _deliver(checked: Checked, threaded: Callable[..., asyncio.Future[Any]]) -> None:
    """Write the status, first delivering what its outbox has due, oldest first, until the receiver fails. Each
    change the receiver took leaves the status at once: a restart sends it again only if it comes in between."""
    monitor, status, url = checked.monitor, checked.status, checked.url
    written, when = monitor.status, now()
    while url and status and status.webhook and (notice := outbox.due(status.webhook, when)) is not None:
        what = f"{monitor.metadata.namespace}/{monitor.metadata.name} {outbox.describe(notice)}"
        problem = await webhook.post(url, rules.payload(monitor, notice), what)
        waiting = outbox.failed(status.webhook, problem, when) if problem else outbox.delivered(status.webhook)
        status = rules.delivered(monitor, status, checked.hook, waiting)
        if problem:
            break
        await threaded(kube.write_status, monitor, written, status)
        written = status
    await threaded(kube.write_status, monitor, written, status)


def _served(monitor: ModelMonitor, deployment: dict[str, Any]) -> list[tuple[ModelVersion, Track]]:
    """The versions a monitor holding them to their performance judges: the stable one, and a canary's."""
    if monitor.spec.performance is None:
        return []
    status = ModelDeploymentStatus.model_validate(deployment.get("status") or {})
    canary = status.rollout.serving_canary() if status.rollout else None
    tracks: list[tuple[str | None, Track]] = [(status.serving_version, "stable"), (canary, "canary")]
    namespace = monitor.metadata.namespace or ""
    found = [
        (kube.get(API_VERSION, "ModelVersion", namespace, name) if name else None, track) for name, track in tracks
    ]
    return [(ModelVersion.model_validate(body), track) for body, track in found if body is not None]


def _measure(
    monitor: ModelMonitor, deployment: dict[str, Any], versions: list[str], memo: kopf.Memo
) -> tuple[dict[str, ServingTotals], dict[str, ServingTotals]] | None:
    """Each version's counts over the window (with its baseline) and over the label window: from an allowed
    Prometheus, or from the serving pods themselves (None while this process's scrapes cannot tell the window yet)."""
    source, spec = monitor.spec.source, monitor.spec
    seconds = duration_seconds(spec.window)
    label_window = spec.performance.label_window if spec.performance and spec.performance.label_window else None
    if source and source.type == "Prometheus":
        if not POLICY.prometheus_allowed(source.prometheus_url or ""):
            refused = ServingTotals(problem=serving.PROMETHEUS_NOT_ALLOWED.format(field="spec.source.prometheusUrl"))
            return dict.fromkeys(versions, refused), dict.fromkeys(versions, refused)
        namespace, model = monitor.metadata.namespace or "", deployment["spec"]["model"]

        def query(window: str, quality: Literal["none", "all", "labelled"]) -> dict[str, ServingTotals]:
            scopes = {v: Scope(namespace, model, v, quality=quality) for v in versions}
            return {v: prometheus.query_totals(source.prometheus_url or "", s, window) for v, s in scopes.items()}

        counted = query(spec.window, "all" if spec.performance else "none")
        return counted, query(label_window, "labelled") if label_window else counted
    labels = {"app.kubernetes.io/instance": monitor.spec.deployment, "app.kubernetes.io/component": serving.SERVER}
    port = (deployment.get("spec", {}).get("runtime") or {}).get("port", SERVER_PORT)
    ready = [p for p in kube.list_("v1", "Pod", monitor.metadata.namespace or "", labels) if pods.ready(p)]
    scrapes = [pods.scrape(p, port) for p in ready]
    totals = {v: serving_totals(scrapes, version=v) for v in versions}
    longest = max(seconds, duration_seconds(label_window) if label_window else 0.0)
    history = _remember(memo, totals, longest)
    when = now()
    starts = [pods.started(p) for p in ready]

    def fresh(window: float) -> bool:  # every pod's counters began within the window
        return all(s is not None and s >= when - dt.timedelta(seconds=window) for s in starts)

    window = counts_over(history, seconds, fresh(seconds))
    if window is None or not label_window:
        return None if window is None else (window, window)
    longer = duration_seconds(label_window)  # after a restart: shorter, rather than none for half of it
    labelled = counts_over(history, longer, fresh(longer), patience=0)
    return window, window if labelled is None else labelled


def _remember(memo: kopf.Memo, totals: dict[str, ServingTotals], seconds: float) -> deque[Scrape]:
    """The scrapes of (about) the last `seconds` and this one, newest last. They live in the object's memo (lost
    on restart: see `counts_over` for what a window is then)."""
    moment = time.monotonic()
    if getattr(memo, "snapshots", None) is None:
        memo.snapshots = deque()
    history: deque[Scrape] = memo.snapshots
    history.append((moment, totals))
    while len(history) > 1 and history[1][0] <= moment - seconds:
        history.popleft()
    return history


def _retrain(
    monitor: ModelMonitor, body: dict[str, Any], reason: str, when: dt.datetime, memo: kopf.Memo
) -> str | None:
    """Create the retraining's ModelBuild; its name, or None when it exists already or was refused (said once)."""
    build = rules.retrain_build(monitor, when)
    name: str = build["metadata"]["name"]
    try:
        created = kube.create(build)
    except kube.Refused as error:
        memo.retrain_refused = when
        tell(body, "Warning", "RetrainRefused", f"spec.retrain.template: {error}", model=build["spec"]["model"])
        return None
    if created is None:
        return None
    RETRAINS.labels(monitor.metadata.namespace, monitor.metadata.name).inc()
    tell(body, "Normal", "Retraining", f"created ModelBuild {name}: {reason}", model=build["spec"]["model"])
    return name


def _export(monitor: ModelMonitor, judgement: rules.Judgement, raised: dict[AlertName, bool]) -> None:
    """The operator's gauges of this monitor."""
    namespace, name = monitor.metadata.namespace or "", monitor.metadata.name
    for alert, active in raised.items():
        ALERT_ACTIVE.labels(namespace, name, alert).set(1 if active else 0)
    for feature in judgement.features:
        if feature.score is not None:
            DRIFT_SCORE.labels(namespace, name, feature.feature, feature.method).set(feature.score)
    if judgement.error_rate is not None:
        ERROR_RATE.labels(namespace, name).set(judgement.error_rate)
    monitor_performance(namespace, name, judgement.performance)
