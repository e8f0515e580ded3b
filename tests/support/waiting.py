"""Waiting for what a test expects: until a check holds, or until a process answers over HTTP."""

import time
from collections.abc import Callable
from typing import Any

from modelops.devcluster.operator import wait_until_answering


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """The first truthy value `check` returns within `timeout` seconds: what a user watching the cluster sees."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached in {timeout}s")


__all__ = ["eventually", "wait_until_answering"]
