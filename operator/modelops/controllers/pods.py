"""Reading serving pods: readiness, and their /metrics."""

from __future__ import annotations

from typing import Any

import httpx

from . import http


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []
    )


def scrape(pod: dict[str, Any], port: int) -> str:
    """The pod's /metrics text, or nothing when it cannot be read (it then counts as no data)."""
    try:
        return http.get_text(f"http://{pod['status']['podIP']}:{port}/metrics", timeout=3)
    except (httpx.HTTPError, KeyError):
        return ""
