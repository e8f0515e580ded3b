"""A local Alertmanager-style webhook receiver, for the demo and the tests: it keeps what ModelMonitors send."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class AlertReceiver:
    """Listens on loopback (or the node's address, for an operator in a pod); with `refuse_first`, answers the first
    delivery 500, so senders' retries show."""

    def __init__(self, refuse_first: bool = False, host: str = "127.0.0.1") -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if refuse_first and receiver.refused == 0:
                    receiver.refused += 1
                    self.send_response(500)
                else:
                    receiver.received.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        #: The token stands for whatever secret a real receiver's URL holds: it must never show up anywhere.
        self.prefix = f"http://{host}:{self.server.server_address[1]}/alerts"
        self.url = f"{self.prefix}?token=s3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def statuses(self, alert: str) -> list[str]:
        """firing / resolved, in the order they arrived, for one alert name."""
        return [b["status"] for b in self.received if b["commonLabels"]["alertname"] == alert]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
