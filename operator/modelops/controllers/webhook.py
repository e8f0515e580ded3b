"""Deliver alert webhooks in the background, with retries and backoff, so a slow or failing receiver never
blocks a check. The URL comes from the namespace's `modelops-alerts` Secret, must lie under a prefix the
administrator allows, and is never logged or written to status; the last failed delivery of each monitor is kept
for its status."""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from modelops.api.v1alpha1.common import ALERTS_SECRET

from . import kube
from .config import POLICY

ATTEMPTS = 5
FIRST_BACKOFF = 1.0
log = logging.getLogger("modelops.webhook")


@dataclass(frozen=True)
class Delivery:
    url: str
    payload: dict[str, Any]
    #: The monitor, as `namespace/name`: whose status hears of a failure.
    monitor: str
    #: What is delivered, for logs and status instead of the URL (e.g. `DriftDetected firing`).
    what: str


_outbox: queue.Queue[Delivery] = queue.Queue(maxsize=10_000)
_started = threading.Lock()
_worker: threading.Thread | None = None
_failures: dict[str, str] = {}


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


def send(delivery: Delivery) -> None:
    """Queue a delivery."""
    global _worker
    with _started:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_deliver_forever, name="webhook", daemon=True)
            _worker.start()
    try:
        _outbox.put_nowait(delivery)
    except queue.Full:
        log.warning("webhook outbox full: dropping %s of %s", delivery.what, delivery.monitor)
        _failures[delivery.monitor] = f"{delivery.what}: dropped, the outbox was full"


def last_failure(monitor: str) -> str | None:
    """Why the monitor's last delivery failed, or None when it succeeded (or none was made)."""
    return _failures.get(monitor)


def forget(monitor: str) -> None:
    _failures.pop(monitor, None)


def _deliver_forever() -> None:
    while True:
        delivery = _outbox.get()
        problem = deliver(delivery.url, delivery.payload, f"{delivery.monitor} {delivery.what}")
        if problem is None:
            _failures.pop(delivery.monitor, None)
        else:
            _failures[delivery.monitor] = f"{delivery.what}: {problem} after {ATTEMPTS} attempts"


def deliver(url: str, payload: dict[str, Any], what: str, attempts: int = ATTEMPTS) -> str | None:
    """POST the payload, retrying; None on success, else the last attempt's problem (no URL in it)."""
    delay = FIRST_BACKOFF
    problem = "not attempted"
    for attempt in range(1, attempts + 1):
        try:
            answer = httpx.post(url, json=payload, timeout=5, follow_redirects=False)
            if answer.status_code < 300:
                return None
            problem = f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            problem = type(error).__name__
        log.warning("webhook %s: attempt %d/%d failed (%s)", what, attempt, attempts, problem)
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    return problem
