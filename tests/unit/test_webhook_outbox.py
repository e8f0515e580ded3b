"""A monitor's webhook outbox: changes wait in its status, oldest first, tried again with a doubling backoff; a
receiver is called on the event loop, so one that hangs holds no thread and delays no other monitor's alerts."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelops.api.v1alpha1.modelmonitor import MAX_UNDELIVERED, AlertNotice
from modelops.controllers import webhook
from modelops.devcluster.cluster import free_port
from modelops.resources import outbox

T0 = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)


def notice(number: int, firing: bool = True) -> AlertNotice:
    moment = T0 + dt.timedelta(minutes=number)
    return AlertNotice(alert="DriftDetected", firing=firing, since=moment, at=moment, message=f"change {number}")


def test_changes_wait_in_order_and_the_oldest_are_dropped_past_the_bound() -> None:
    waiting = outbox.queued(None, [notice(0), notice(1, firing=False)])
    waiting = outbox.queued(waiting, [notice(2)])
    assert waiting is not None and [n.message for n in waiting.undelivered or []] == [
        "change 0",
        "change 1",
        "change 2",
    ]
    assert outbox.queued(waiting, []) is waiting
    full = outbox.queued(waiting, [notice(i) for i in range(3, MAX_UNDELIVERED + 5)])
    assert full is not None and len(full.undelivered or []) == MAX_UNDELIVERED
    assert (full.undelivered or [])[0].message == "change 5", "the oldest went"
    assert full.last_failure == f"5 older changes dropped: the receiver took none of {MAX_UNDELIVERED + 5}"


def test_a_failing_receiver_is_tried_again_after_a_doubling_backoff_and_the_next_change_at_once() -> None:
    waiting = outbox.queued(None, [notice(0), notice(1, firing=False)])
    assert waiting is not None and outbox.due(waiting, T0) == notice(0)
    waits = []
    for _ in range(10):
        waiting = outbox.failed(waiting, "ConnectError", T0)
        assert waiting.next_attempt_time is not None
        waits.append((waiting.next_attempt_time - T0).total_seconds())
        assert outbox.due(waiting, waiting.next_attempt_time - dt.timedelta(milliseconds=1)) is None
        assert outbox.due(waiting, waiting.next_attempt_time) == notice(0)
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert waiting.last_failure == "DriftDetected firing: ConnectError" and waiting.attempts == 10
    taken = outbox.delivered(waiting)
    assert taken is not None and taken.attempts is None and taken.next_attempt_time is None
    assert outbox.due(taken, T0) == notice(1, firing=False), "the next change is not held back by the last backoff"
    assert outbox.delivered(taken) is None and outbox.due(None, T0) is None


class Receiver:
    """A local webhook receiver answering `code`; a hanging one answers only once released."""

    def __init__(self, code: int = 200, hanging: bool = False) -> None:
        self.got: list[bytes] = []
        self.release = threading.Event()
        if not hanging:
            self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.got.append(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.release.wait(30)
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver, Receiver]]:
    made = Receiver(hanging=True), Receiver(), Receiver(code=500)
    yield made
    for receiver in made:
        receiver.close()


def test_each_post_says_why_it_failed_and_a_hanging_receiver_delays_no_other(
    receivers: tuple[Receiver, Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    hanging, healthy, failing = receivers
    monkeypatch.setattr(webhook, "TIMEOUT", 2.0)

    async def both() -> tuple[tuple[str | None, float], tuple[str | None, float]]:
        started = time.monotonic()

        async def timed(url: str) -> tuple[str | None, float]:
            problem = await webhook.post(url, {"n": 1}, "team/watch DriftDetected firing")
            return problem, time.monotonic() - started

        slow, fast = await asyncio.gather(timed(hanging.url), timed(healthy.url))
        return slow, fast

    (slow_problem, slow_s), (fast_problem, fast_s) = asyncio.run(both())
    assert slow_problem == "ReadTimeout" and slow_s >= 2.0
    assert fast_problem is None and fast_s < slow_s and healthy.got == [b'{"n":1}']
    assert asyncio.run(webhook.post(failing.url, {}, "x")) == "HTTP 500"
    assert asyncio.run(webhook.post(f"http://127.0.0.1:{free_port()}/alerts", {}, "x")) == "ConnectError"
