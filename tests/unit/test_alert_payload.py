"""What a monitor's webhook sends: Alertmanager's webhook format (version 4), so receivers that already parse
Alertmanager's notifications (Slack bridges, PagerDuty, incident tools) read ours as they are."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from modelops.resources.alerts import webhook_payload

SINCE = "2026-03-01T10:00:00Z"
NOW = "2026-03-01T10:30:00Z"
#: Alertmanager's zero time: an alert that has not ended.
STILL_FIRING = "0001-01-01T00:00:00Z"


def payload(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "namespace": "team-a",
        "monitor": "cancer-watch",
        "deployment": "cancer",
        "alert": "DriftDetected",
        "firing": True,
        "message": "age drifted: PSI 0.31 above 0.2",
        "since": SINCE,
        "now": NOW,
    }
    return webhook_payload(**{**args, **overrides})


def test_a_firing_alert_started_when_it_was_raised_and_has_not_ended() -> None:
    sent = payload(firing=True)
    [alert] = sent["alerts"]
    assert sent["status"] == alert["status"] == "firing"
    assert (alert["startsAt"], alert["endsAt"]) == (SINCE, STILL_FIRING)


def test_a_resolved_alert_keeps_its_start_and_ends_now() -> None:
    sent = payload(firing=False, message="back within limits")
    [alert] = sent["alerts"]
    assert sent["status"] == alert["status"] == "resolved"
    assert (alert["startsAt"], alert["endsAt"]) == (SINCE, NOW)


def test_the_labels_name_the_alert_the_monitor_and_what_it_watches() -> None:
    sent = payload(alert="ErrorRateHigh", message="error rate 0.12 above 0.05")
    expected = {
        "alertname": "ErrorRateHigh",
        "namespace": "team-a",
        "monitor": "cancer-watch",
        "deployment": "cancer",
        "severity": "warning",
    }
    [alert] = sent["alerts"]
    assert alert["labels"] == sent["commonLabels"] == expected
    assert sent["groupLabels"] == {"alertname": "ErrorRateHigh"}
    assert alert["annotations"] == sent["commonAnnotations"] == {"summary": "error rate 0.12 above 0.05"}


def fingerprint(**overrides: Any) -> str:
    return payload(**overrides)["alerts"][0]["fingerprint"]


def test_an_alert_keeps_its_fingerprint_from_firing_to_resolved() -> None:
    """Receivers pair a resolution with its alert by fingerprint: only the labels may decide it."""
    first = fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert fingerprint(firing=False, message="back within limits", since=NOW, now="2026-03-01T11:00:00Z") == first


@pytest.mark.parametrize(
    "other",
    [{"alert": "ErrorRateHigh"}, {"monitor": "cancer-watch-2"}, {"namespace": "team-b"}, {"deployment": "cancer-eu"}],
    ids=["alert", "monitor", "namespace", "deployment"],
)
def test_another_alert_or_another_monitors_alert_has_another_fingerprint(other: dict[str, str]) -> None:
    assert fingerprint(**other) != fingerprint()


def test_the_payload_has_the_shape_alertmanager_receivers_parse() -> None:
    sent = json.loads(json.dumps(payload()))  # what goes over the wire
    assert sent["version"] == "4" and sent["receiver"] and sent["truncatedAlerts"] == 0
    assert isinstance(sent["externalURL"], str)
    assert isinstance(sent["alerts"], list) and len(sent["alerts"]) == 1
    assert set(sent["alerts"][0]) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert sent["groupKey"] == '{}:{alertname="DriftDetected", monitor="cancer-watch", namespace="team-a"}'


def test_each_alert_of_each_monitor_is_its_own_group() -> None:
    keys = {
        payload(**args)["groupKey"]
        for args in ({}, {"alert": "ErrorRateHigh"}, {"monitor": "other-watch"}, {"namespace": "team-b"})
    }
    assert len(keys) == 4
    assert payload(firing=False)["groupKey"] == payload()["groupKey"], "a resolution goes to the alert's group"
