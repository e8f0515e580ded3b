"""Requests to a deployment's server pods, for the demo and the tests.

The dev cluster gives pods loopback addresses, which Kubernetes refuses as Service endpoints, and has no kube-proxy:
so traffic goes to every ready pod in turn, by address, as a Service would spread it.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpx

SERVER_PORT = 3000


class Traffic:
    """A background thread that posts batches of records to every pod `addresses()` names, until stopped."""

    def __init__(
        self, addresses: Callable[[], Iterable[str]], records: list[dict[str, Any]], batch: int = 20, pause: float = 0.1
    ) -> None:
        self.addresses = addresses
        self.batches = itertools.cycle([records[i : i + batch] for i in range(0, len(records), batch)])
        self.pause = pause
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                for address in self.addresses():
                    with contextlib.suppress(httpx.HTTPError):
                        client.post(f"http://{address}:{SERVER_PORT}/predict", json={"records": next(self.batches)})
                self._stop.wait(self.pause)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def ready_pod_addresses(pods: list[dict[str, Any]]) -> list[str]:
    """The loopback addresses of the pods the pod runner started and that answer."""
    return [
        pod["status"]["podIP"]
        for pod in pods
        if pod.get("status", {}).get("podIP", "").startswith("127.")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
    ]
