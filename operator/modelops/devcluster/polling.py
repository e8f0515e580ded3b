"""Waiting for something to become true, the one way the dev cluster, the demo and the tests wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    check: Callable[[], T], timeout: float, interval: float, between: Callable[[], None] | None = None
) -> T | None:
    """The first truthy value `check` returns within `timeout` seconds, or None. `between` runs after each miss,
    and raises to give up early (a process that died will not answer later)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() + interval > deadline:
            return None
        if between is not None:
            between()
        time.sleep(interval)
