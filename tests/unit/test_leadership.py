"""The leader-election rule alone (the processes on the real API server are in tests/integration/test_leadership.py)."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client

from modelops.controllers.leadership import Elector, Holder, Timing, move
from modelops.devcluster.cluster import free_port

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


def test_an_api_server_that_does_not_answer_is_waited_out_never_a_crash() -> None:
    """As while the API server restarts: a candidate goes on waiting, and a leader's renewal says it lost the
    Lease after its renew deadline. (An error below the client's, a refused connection or a timeout, used to end
    the standby's process, and the leader's renewal thread without a word.)"""
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    configuration.retries = 0
    elector = Elector(client.ApiClient(configuration), "ops", "modelops", "me", Timing(3, 0.5, 0.1))
    stopping = threading.Event()
    threading.Timer(1.0, stopping.set).start()
    assert elector.acquire(stopping) is False, "waited until told to stop"
    said: list[str] = []
    lost = threading.Event()
    elector.keep(lambda why: (said.append(why), lost.set()))
    assert lost.wait(10), "the renewal told its loss"
    assert said[0].startswith("could not renew Lease ops/modelops for "), said
