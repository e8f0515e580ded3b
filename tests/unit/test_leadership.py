"""The leader-election rule alone (the processes on the real API server are in tests/integration/test_leadership.py)."""

from __future__ import annotations

import pytest

from modelops.controllers.leadership import Holder, Timing, move

TIMING = Timing(lease_seconds=15, renew_deadline_seconds=10, retry_seconds=2)


def test_a_missing_or_released_lease_is_taken() -> None:
    assert move(None, "b", unchanged_since=100, now=100, timing=TIMING) == "take"
    assert move(Holder("", "7"), "b", unchanged_since=100, now=100, timing=TIMING) == "take"


def test_the_holder_renews() -> None:
    assert move(Holder("a", "7"), "a", unchanged_since=0, now=1_000, timing=TIMING) == "renew"


@pytest.mark.parametrize(("waited", "expected"), [(0, "wait"), (14.9, "wait"), (15, "take"), (60, "take")])
def test_another_holders_lease_is_taken_only_once_unchanged_for_a_whole_lease(waited: float, expected: str) -> None:
    """Measured from when this candidate saw the record, by its own clock: the renewTime another node wrote is
    never compared with this node's clock."""
    assert move(Holder("a", "7"), "b", unchanged_since=100, now=100 + waited, timing=TIMING) == expected


def test_a_leader_stops_before_its_lease_can_pass_on() -> None:
    """Its last renewal, then a renew deadline of failures, then one more retry whose call times out after a retry
    period: all before a standby may take the lease."""
    for timing in (TIMING, Timing()):
        assert timing.renew_deadline_seconds + 2 * timing.retry_seconds < timing.lease_seconds
