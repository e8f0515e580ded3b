"""Deliver alert webhooks in the background, with retries and backoff, so a slow or failing receiver never
blocks a check, and one monitor's receiver never delays another's alerts (each monitor has its own outbox). The URL
comes from the namespace's `modelops-alerts` Secret, must lie under a prefix the administrator allows, and is never
logged or written to status; the last failed delivery of each monitor is kept for its status."""

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
#: Deliveries a monitor's outbox holds, and how long its thread waits for one more before it ends.
OUTBOX_SIZE = 100
IDLE = 60.0
log = logging.getLogger("modelops.webhook")


@dataclass(frozen=True)
class Delivery:
    url: str
    payload: dict[str, Any]
    #: What is delivered, for logs and status instead of the URL (e.g. `DriftDetected firing`).
    what: str


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


class Outbox:
    """One monitor's deliveries, in order, on a thread of its own that lives while there is something to deliver:
    a slow or failing receiver delays only its own monitor's alerts, and an idle monitor holds no thread."""

    def __init__(self, monitor: str, idle: float = IDLE) -> None:
        self.monitor = monitor
        self.idle = idle
        #: Why the last delivery failed, or None when it succeeded (or none was made).
        self.last_failure: str | None = None
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=OUTBOX_SIZE)
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def send(self, delivery: Delivery) -> None:
        with self._lock:
            try:
                self._queue.put_nowait(delivery)
            except queue.Full:
                log.warning("webhook outbox full: dropping %s of %s", delivery.what, self.monitor)
                self.last_failure = f"{delivery.what}: dropped, the outbox was full"
                return
            if self._worker is None:
                self._worker = threading.Thread(target=self._deliver, name=f"webhook {self.monitor}", daemon=True)
                self._worker.start()

    def _deliver(self) -> None:
        while True:
            try:
                delivery = self._queue.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            problem = deliver(delivery.url, delivery.payload, f"{self.monitor} {delivery.what}")
            self.last_failure = None if problem is None else f"{delivery.what}: {problem} after {ATTEMPTS} attempts"


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
