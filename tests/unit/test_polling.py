"""The one way the dev cluster, the demo and the tests wait."""

from __future__ import annotations

import itertools

import pytest

from modelops.devcluster.polling import poll


def test_poll_returns_the_first_truthy_answer() -> None:
    answers = iter([None, "", "ready", "later"])
    assert poll(lambda: next(answers), timeout=5, interval=0.01) == "ready"


def test_poll_gives_up_with_none_at_the_deadline_after_trying_at_least_once() -> None:
    tries = itertools.count()
    assert poll(lambda: next(tries) < 0, timeout=0.05, interval=0.01) is None
    assert next(tries) >= 2


def test_between_gives_up_early() -> None:
    def died() -> None:
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        poll(lambda: False, timeout=60, interval=0.01, between=died)
