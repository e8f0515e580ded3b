"""HTTP reads of answers the operator does not control (serving pods' /metrics, Prometheus), bounded in size and
time: one oversized or slow answer costs a failed read, never the operator's memory or a handler thread."""

from __future__ import annotations

from typing import Any

import httpx

#: The largest answer read; beyond it the read fails (a pod's /metrics is a few hundred KB).
MAX_BYTES = 8 * 2**20


class TooLarge(httpx.HTTPError):
    """The answer was larger than MAX_BYTES."""


def get_text(url: str, *, params: dict[str, Any] | None = None, timeout: float = 5, limit: int = MAX_BYTES) -> str:
    """The body of a GET that answered 2xx; redirects are not followed (they could lead anywhere)."""
    with httpx.stream("GET", url, params=params, timeout=timeout, follow_redirects=False) as answer:
        answer.raise_for_status()
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise TooLarge(f"more than {limit} bytes")
        return body.decode(answer.encoding or "utf-8", errors="replace")
