"""Call a monitor's alert webhook. The URL comes from the namespace's `modelops-alerts` Secret, must lie under a
prefix the administrator allows, and is never logged or written to status. What to deliver, and when to try again,
is the outbox's, kept in the monitor's status (`resources/outbox.py`)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx

from modelops.api.v1alpha1.common import ALERTS_SECRET

from . import kube
from .config import POLICY

#: Seconds a receiver has to answer one delivery.
TIMEOUT = 5.0
log = logging.getLogger("modelops.webhook")


def receiver(namespace: str, key: str) -> tuple[str | None, str | None]:
    """(the webhook URL, None), or (None, why it cannot be used) — the why names the field, never the URL."""
    field = "spec.alerts.webhook.urlSecretKey"
    secret = kube.get("v1", "Secret", namespace, ALERTS_SECRET)
    if secret is None:
        return None, f"{field}: Secret {ALERTS_SECRET} does not exist in namespace {namespace}"
    data = secret.get("data") or {}
    if key not in data:
        return None, f"{field}: Secret {ALERTS_SECRET} has no key {key!r}"
    url = base64.b64decode(data[key]).decode(errors="replace").strip()
    if not POLICY.webhook_allowed(url):
        return None, (
            f"{field}: the URL in Secret {ALERTS_SECRET} key {key!r} is not under a prefix the operator's "
            "administrator allows (the chart's alerts.webhookUrlPrefixes), so it is never called"
        )
    return url, None


async def post(url: str, payload: dict[str, Any], what: str) -> str | None:
    """POST one payload once, awaited on the event loop (a receiver that hangs holds no thread); None when the
    receiver took it, else why not (no URL in it, nor in the log)."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            answer = await client.post(url, json=payload)
        problem = None if answer.status_code < 300 else f"HTTP {answer.status_code}"
    except httpx.HTTPError as error:
        problem = type(error).__name__
    if problem is not None:
        log.warning("webhook %s: not delivered (%s); tried again with backoff", what, problem)
    return problem
