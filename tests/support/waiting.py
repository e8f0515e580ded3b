"""Waiting for what a test expects: until a check holds, or until a process answers over HTTP."""

from collections.abc import Callable
from typing import Any

from modelops.devcluster.operator import wait_until_answering
from modelops.devcluster.polling import poll


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """The first truthy value `check` returns within `timeout` seconds: what a user watching the cluster sees."""
    value = poll(check, timeout, 0.5)
    if not value:
        raise AssertionError(f"{what} not reached in {timeout}s")
    return value


__all__ = ["eventually", "wait_until_answering"]
