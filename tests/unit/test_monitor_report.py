"""The ModelMonitor's pure report of a judged window: which alerts are raised or cleared, what is told and delivered,
the conditions, the status, and when a retraining is due."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelMonitor
from modelops.drift import DatasetDrift
from modelops.resources import modelmonitor as rules
from modelops.resources import outbox
from modelops.resources.modelmonitor import Judgement, Webhook

T0 = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(minutes=5)
DRIFT = "2 of 3 features drifted: age, plan"
TEMPLATE = {
    "model": "churn",
    "task": "classification",
    "dataset": {"uri": "s3://data/churn.csv", "target": "churned"},
    "trainer": {"estimator": {"className": "sklearn.linear_model.LogisticRegression"}},
    "artifacts": {"uri": "s3://models"},
}
WEBHOOK = Webhook(configured=True)


def monitor(status: dict[str, Any] | None = None, **spec: Any) -> ModelMonitor:
    return ModelMonitor.model_validate(
        {
            "metadata": {"name": "watch", "namespace": "team-a", "generation": 3},
            "spec": {"deployment": "churn", **spec},
            "status": status,
        }
    )


def judged(**alerts: str) -> Judgement:
    return Judgement([], DatasetDrift("NoDrift", [], 0.0), 500.0, 0.01, 0.05, dict(alerts))


def raised_since(since: dt.datetime, message: str = DRIFT) -> dict[str, Any]:
    """A status that says DriftDetected has been raised since `since`."""
    moment = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "activeAlerts": [{"name": "DriftDetected", "since": moment, "message": message}],
        "conditions": [{"type": "DriftDetected", "status": "True", "reason": "DriftDetected", "message": message}],
    }


def queued(report: rules.Report) -> list[tuple[str, dict[str, Any]]]:
    """What the report queued for the webhook, as (what, payload), oldest first."""
    waiting = report.status.webhook.undelivered if report.status.webhook else None
    return [(outbox.describe(n), rules.payload(monitor(), n)) for n in waiting or []]


def condition(report: rules.Report, type_: str) -> tuple[str, str | None]:
    found = next(c for c in report.status.conditions or [] if c.type == type_)
    return found.status, found.reason


def test_a_new_alert_is_raised_told_and_delivered_as_firing() -> None:
    report = rules.report(monitor(), judged(DriftDetected=DRIFT), WEBHOOK, None, LATER)
    assert condition(report, "DriftDetected") == ("True", "DriftDetected")
    assert report.events == [("Warning", "DriftDetected", f"DriftDetected raised: {DRIFT}")]
    [(what, payload)] = queued(report)
    assert what == "DriftDetected firing" and payload["status"] == "firing"
    assert payload["alerts"][0]["startsAt"] == "2026-12-01T12:05:00Z"
    assert [(a.name, a.since) for a in report.status.active_alerts or []] == [("DriftDetected", LATER)]
    assert report.raised == {"DriftDetected": True, "ErrorRateHigh": False, "LatencyHigh": False}
    assert condition(report, "Ready") == ("True", "Checked")


def test_an_alert_still_raised_is_neither_told_nor_delivered_again_and_keeps_its_start() -> None:
    report = rules.report(monitor(raised_since(T0)), judged(DriftDetected=DRIFT), WEBHOOK, None, LATER)
    assert report.events == [] and queued(report) == []
    assert [(a.name, a.since) for a in report.status.active_alerts or []] == [("DriftDetected", T0)]


def test_a_cleared_alert_is_told_and_resolved_with_its_start_and_its_last_message() -> None:
    report = rules.report(monitor(raised_since(T0)), judged(), WEBHOOK, None, LATER)
    assert condition(report, "DriftDetected") == ("False", "Normal")
    assert report.events == [("Normal", "DriftDetectedCleared", "DriftDetected cleared: back within limits")]
    [(what, payload)] = queued(report)
    assert what == "DriftDetected resolved" and payload["status"] == "resolved"
    alert = payload["alerts"][0]
    assert alert["startsAt"] == "2026-12-01T12:00:00Z" and alert["endsAt"] == "2026-12-01T12:05:00Z"
    assert alert["annotations"]["summary"] == DRIFT
    assert report.status.active_alerts == []


@pytest.mark.parametrize(
    ("webhook", "delivered", "ready"),
    [
        (Webhook(), ("False", "NoWebhook"), ("True", "Checked")),
        (
            Webhook(True, problem="spec.alerts.webhook.urlSecretKey: no key"),
            ("False", "Unavailable"),
            ("False", "WebhookUnavailable"),
        ),
        (WEBHOOK, ("True", "Delivered"), ("True", "Checked")),
    ],
    ids=["none", "unusable", "working"],
)
def test_only_a_usable_webhook_is_called_and_its_state_is_a_condition(
    webhook: Webhook, delivered: tuple[str, str], ready: tuple[str, str]
) -> None:
    report = rules.report(monitor(), judged(DriftDetected=DRIFT), webhook, None, LATER)
    assert bool(queued(report)) == webhook.usable
    assert condition(report, "WebhookDelivered") == delivered
    assert (condition(report, "Ready")[0], condition(report, "Stalled" if ready[0] == "False" else "Ready")[1]) == ready
    assert report.events, "Events are told whatever the webhook's state"


def test_a_prometheus_rule_problem_stalls_the_monitor_naming_the_field() -> None:
    problem = "spec.alerts.prometheusRule: the PrometheusRule CRD (monitoring.coreos.com/v1) is not installed"
    report = rules.report(monitor(), judged(), Webhook(), problem, LATER)
    stalled = next(c for c in report.status.conditions or [] if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "PrometheusRuleUnavailable")
    assert stalled.message and stalled.message.startswith(problem)


def test_the_status_says_what_was_measured_and_keeps_the_last_retraining() -> None:
    last = {"build": "watch-retrain-1", "time": "2026-11-30T00:00:00Z", "reason": DRIFT}
    report = rules.report(monitor({"lastRetrain": last, "errorRate": 0.5}), judged(), WEBHOOK, None, LATER)
    written = report.status.to_api()
    assert written["lastRetrain"] == last and written["errorRate"] == 0.01 and written["samples"] == 500
    assert written["lastCheckTime"] == "2026-12-01T12:05:00Z" and written["observedGeneration"] == 3
    unmeasured = Judgement([], DatasetDrift("NotEnoughData", [], None), 0.0, None, None, {})
    assert (
        "errorRate" not in rules.report(monitor({"errorRate": 0.5}), unmeasured, WEBHOOK, None, LATER).status.to_api()
    )


RETRAIN = {"enabled": True, "cooldown": "1h", "template": TEMPLATE}


@pytest.mark.parametrize(
    ("retrain", "status", "refused", "alerts", "due"),
    [
        (RETRAIN, None, None, {"DriftDetected": DRIFT}, True),
        (RETRAIN, None, None, {"ErrorRateHigh": "error rate 50%"}, False),  # only drift retrains
        ({**RETRAIN, "enabled": False}, None, None, {"DriftDetected": DRIFT}, False),
        (None, None, None, {"DriftDetected": DRIFT}, False),
        (
            RETRAIN,
            {"lastRetrain": {"build": "b", "time": "2026-12-01T11:30:00Z", "reason": DRIFT}},
            None,
            {"DriftDetected": DRIFT},
            False,
        ),
        (
            RETRAIN,
            {"lastRetrain": {"build": "b", "time": "2026-12-01T10:00:00Z", "reason": DRIFT}},
            None,
            {"DriftDetected": DRIFT},
            True,
        ),
        (RETRAIN, None, T0, {"DriftDetected": DRIFT}, False),  # refused 5 minutes ago: said once per cooldown
        (RETRAIN, None, T0 - dt.timedelta(hours=2), {"DriftDetected": DRIFT}, True),
    ],
    ids=["drift", "errors", "disabled", "none", "cooling-down", "cooled-down", "refused-lately", "refused-long-ago"],
)
def test_a_retraining_is_due_on_drift_at_most_once_per_cooldown(
    retrain: dict[str, Any] | None, status: dict[str, Any] | None, refused: dt.datetime | None, alerts: dict, due: bool
) -> None:
    watched = monitor(status, retrain=retrain) if retrain else monitor(status)
    assert rules.report(watched, judged(**alerts), WEBHOOK, None, LATER, refused).retrain == due


def test_the_retraining_build_is_the_template_on_the_fresh_data_named_after_the_check() -> None:
    watched = monitor(retrain={**RETRAIN, "datasetUri": "s3://data/churn-december.csv"})
    build = rules.retrain_build(watched, LATER)
    assert build["metadata"]["name"] == "watch-retrain-20261201120500"
    assert build["metadata"]["namespace"] == "team-a"
    assert build["metadata"]["labels"]["modelops.io/monitor"] == "watch"
    assert build["spec"]["dataset"]["uri"] == "s3://data/churn-december.csv"
    assert build["spec"]["model"] == "churn" and "ownerReferences" not in build["metadata"]
    status = rules.retrained(
        rules.report(watched, judged(DriftDetected=DRIFT), WEBHOOK, None, LATER).status,
        "b",
        rules.retrain_reason(watched, judged(DriftDetected=DRIFT)) or "",
        LATER,
    )
    reason = f"DriftDetected: {DRIFT}"
    assert status.to_api()["lastRetrain"] == {"build": "b", "time": "2026-12-01T12:05:00Z", "reason": reason}


def test_a_check_that_cannot_judge_changes_only_the_conditions() -> None:
    before = monitor({"errorRate": 0.02, **raised_since(T0)})
    status = rules.stalled(before, "MetricsUnavailable", "no ready pod of churn exports its baseline yet")
    written = status.to_api()
    assert written["errorRate"] == 0.02 and written["activeAlerts"] == before.to_api()["status"]["activeAlerts"]
    stalled = next(c for c in status.conditions or [] if c.type == "Stalled")
    assert (stalled.status, stalled.reason, stalled.observed_generation) == ("True", "MetricsUnavailable", 3)


#: DriftDetected's raise at T0, not yet taken by the receiver.
UNDELIVERED = {"alert": "DriftDetected", "firing": True, "since": "2026-12-01T12:00:00Z", "at": "2026-12-01T12:00:00Z"}


def test_a_change_the_receiver_has_not_taken_waits_behind_the_older_ones_and_says_why() -> None:
    waiting = {
        "undelivered": [{**UNDELIVERED, "message": DRIFT}],
        "attempts": 3,
        "lastFailure": "DriftDetected firing: ConnectError",
    }
    failing = {**raised_since(T0), "webhook": waiting}
    report = rules.report(monitor(failing), judged(), WEBHOOK, None, LATER)
    assert [what for what, _ in queued(report)] == ["DriftDetected firing", "DriftDetected resolved"]
    status, reason = condition(report, "WebhookDelivered")
    assert (status, reason) == ("False", "Failed")
    message = next(c.message for c in report.status.conditions or [] if c.type == "WebhookDelivered")
    assert message == "DriftDetected firing: ConnectError after 3 attempts; 2 changes waiting, tried again with backoff"
    taken = rules.delivered(monitor(failing), report.status, WEBHOOK, None)
    assert taken.webhook is None and condition(rules.Report(taken, [], {}, False), "WebhookDelivered")[0] == "True"


def test_no_webhook_keeps_no_outbox() -> None:
    waiting = {"webhook": {"undelivered": [{**UNDELIVERED, "message": DRIFT}]}}
    assert rules.report(monitor(waiting), judged(), Webhook(), None, LATER).status.webhook is None


def test_a_window_not_yet_told_leaves_what_the_last_check_said_standing() -> None:
    checked = monitor({**raised_since(T0), "lastCheckTime": "2026-12-01T12:00:00Z"})
    assert rules.unmeasured(checked, "the window fills") == checked.status, "the alert stands, not flapped"
    fresh = rules.unmeasured(monitor(), "the window fills")
    said = {c.type: (c.status, c.reason) for c in fresh.conditions or []}
    assert said["Reconciling"] == ("True", "WindowFilling") and said["Ready"][0] == "False"
    assert fresh.active_alerts is None
