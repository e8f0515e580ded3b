"""Each monitor delivers its webhooks from its own outbox: a receiver that hangs delays only its own monitor."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelops.controllers import webhook


class Receiver:
    """A local webhook receiver that records what it gets; a blocked one answers only once released."""

    def __init__(self, blocked: bool = False) -> None:
        self.got = threading.Event()
        self.release = threading.Event()
        if not blocked:
            self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.set()
                receiver.release.wait(30)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    hanging, healthy = Receiver(blocked=True), Receiver()
    yield hanging, healthy
    hanging.close()
    healthy.close()


def test_a_hanging_receiver_delays_no_other_monitors_alerts(receivers: tuple[Receiver, Receiver]) -> None:
    hanging, healthy = receivers
    first, second = webhook.Outbox("team-a/slow"), webhook.Outbox("team-b/fast")
    first.send(webhook.Delivery(hanging.url, {"n": 1}, "DriftDetected firing"))
    first.send(webhook.Delivery(hanging.url, {"n": 2}, "DriftDetected resolved"))
    assert hanging.got.wait(10), "the first monitor's receiver was called"
    second.send(webhook.Delivery(healthy.url, {"n": 1}, "DriftDetected firing"))
    assert healthy.got.wait(10), "the second monitor's alert was delivered while the first receiver still hangs"
    assert not hanging.release.is_set()


def test_an_idle_outbox_holds_no_thread_and_starts_one_again_when_needed(receivers: tuple[Receiver, Receiver]) -> None:
    _, healthy = receivers
    outbox = webhook.Outbox("team-b/fast", idle=0.1)
    outbox.send(webhook.Delivery(healthy.url, {"n": 1}, "DriftDetected firing"))
    assert healthy.got.wait(10)
    worker = outbox._worker
    assert worker is not None
    worker.join(10)
    assert not worker.is_alive() and outbox._worker is None and outbox.last_failure is None
    healthy.got.clear()
    outbox.send(webhook.Delivery(healthy.url, {"n": 2}, "DriftDetected resolved"))
    assert healthy.got.wait(10), "a new thread delivers the next alert"
