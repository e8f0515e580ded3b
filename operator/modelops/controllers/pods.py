"""Reading serving pods: readiness, and their /metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from . import http


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []
    )


def started(pod: dict[str, Any]) -> dt.datetime | None:
    """When the pod's containers last started (their counters began then), or None if it is not running."""
    status = pod.get("status") or {}
    running = [
        ((c.get("state") or {}).get("running") or {}).get("startedAt") for c in status.get("containerStatuses") or []
    ]
    moments = [dt.datetime.fromisoformat(m.replace("Z", "+00:00")) for m in running if m]
    return max(moments) if moments else None


def scrape(pod: dict[str, Any], port: int) -> str:
    """The pod's /metrics text, or nothing when it cannot be read (it then counts as no data)."""
    try:
        return http.get_text(f"http://{pod['status']['podIP']}:{port}/metrics", timeout=3)
    except (httpx.HTTPError, KeyError):
        return ""
