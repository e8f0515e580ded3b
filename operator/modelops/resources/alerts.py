"""Alertmanager-compatible webhook payloads for a monitor's alerts (the format receivers already parse)."""

from __future__ import annotations

import hashlib
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


def webhook_payload(
    *, namespace: str, monitor: str, deployment: str, alert: str, firing: bool, message: str, since: str, now: str
) -> dict[str, Any]:
    labels = {
        "alertname": alert,
        "namespace": namespace,
        "monitor": monitor,
        "deployment": deployment,
        "severity": "warning",
    }
    status = "firing" if firing else "resolved"
    fingerprint = hashlib.sha256("\x1f".join(f"{k}={v}" for k, v in sorted(labels.items())).encode()).hexdigest()[:16]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alert}", monitor="{monitor}", namespace="{namespace}"}}',
        "status": status,
        "receiver": "modelops",
        "groupLabels": {"alertname": alert},
        "commonLabels": labels,
        "commonAnnotations": {"summary": message},
        "externalURL": "",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": message},
                "startsAt": since,
                "endsAt": ZERO_TIME if firing else now,
                "generatorURL": "",
                "fingerprint": fingerprint,
            }
        ],
    }


def webhook_condition(configured: bool, unusable: str | None, failed: str | None) -> tuple[bool, str, str]:
    """The `WebhookDelivered` condition as (status, reason, message): no webhook, one that cannot be used (its
    Secret, key or URL: `unusable` says which field), one whose last delivery failed, or one that works."""
    if not configured:
        return False, "NoWebhook", "no webhook is configured"
    if unusable:
        return False, "Unavailable", unusable
    if failed:
        return False, "Failed", failed
    return True, "Delivered", "the last delivery succeeded"
