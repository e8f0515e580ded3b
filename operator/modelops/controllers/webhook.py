"""Deliver alert webhooks in the background, with retries and backoff, so a slow or failing receiver never
blocks a check. The URL comes from a Secret and is never logged or written to status."""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from typing import Any

import httpx

from . import kube

ATTEMPTS = 5
FIRST_BACKOFF = 1.0
log = logging.getLogger("modelops.webhook")
_outbox: queue.Queue[tuple[str, dict[str, Any], str]] = queue.Queue(maxsize=10_000)
_started = threading.Lock()
_worker: threading.Thread | None = None


def secret_value(namespace: str, name: str, key: str) -> str | None:
    secret = kube.get("v1", "Secret", namespace, name)
    data = (secret or {}).get("data") or {}
    return base64.b64decode(data[key]).decode().strip() if key in data else None


def send(url: str, payload: dict[str, Any], what: str) -> None:
    """Queue a delivery; `what` names it in logs instead of the URL."""
    global _worker
    with _started:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_deliver_forever, name="webhook", daemon=True)
            _worker.start()
    try:
        _outbox.put_nowait((url, payload, what))
    except queue.Full:
        log.warning("webhook outbox full: dropping %s", what)


def _deliver_forever() -> None:
    while True:
        url, payload, what = _outbox.get()
        deliver(url, payload, what)


def deliver(url: str, payload: dict[str, Any], what: str, attempts: int = ATTEMPTS) -> bool:
    delay = FIRST_BACKOFF
    for attempt in range(1, attempts + 1):
        try:
            answer = httpx.post(url, json=payload, timeout=5)
            if answer.status_code < 300:
                return True
            problem = f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            problem = type(error).__name__
        log.warning("webhook %s: attempt %d/%d failed (%s)", what, attempt, attempts, problem)
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    return False
