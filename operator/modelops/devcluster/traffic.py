"""Requests to a deployment's Service, for the demo and the tests.

Each request opens a connection of its own, so kube-proxy spreads them over the ready pods as it spreads any
caller's: a canary with one replica in four gets about a quarter of them.
"""

from __future__ import annotations

import collections
import itertools
import threading
from typing import Any

import httpx


class Traffic:
    """A background thread that posts batches of records to `url`'s /predict, until stopped, and counts what the
    callers saw: answers, failures (an error status or no answer), and which versions answered."""

    def __init__(self, url: str, records: list[dict[str, Any]], batch: int = 20, pause: float = 0.05) -> None:
        self.url = url
        self.batches = itertools.cycle([records[i : i + batch] for i in range(0, len(records), batch)])
        self.pause = pause
        self.answered = 0
        self.failed = 0
        self.versions: collections.Counter[str] = collections.Counter()
        #: Why requests failed: the client's error, or the HTTP status.
        self.failures: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=5, limits=no_reuse) as client:
            while not self._stop.is_set():
                try:
                    answer = client.post(f"{self.url}/predict", json={"records": next(self.batches)})
                except httpx.HTTPError as error:
                    self.failed += 1
                    self.failures[type(error).__name__] += 1
                else:
                    if answer.is_success:
                        self.answered += 1
                        self.versions[str(answer.json().get("version"))] += 1
                    else:
                        self.failed += 1
                        self.failures[f"HTTP {answer.status_code}"] += 1
                self._stop.wait(self.pause)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def service_url(service: dict[str, Any]) -> str:
    """The Service's ClusterIP address, reachable from the node's host through kube-proxy."""
    return f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"


def ready_pod_addresses(pods: list[dict[str, Any]]) -> list[str]:
    """The pod-network addresses of the pods that are Ready (to ask one pod, not the Service)."""
    return [
        pod["status"]["podIP"]
        for pod in pods
        if pod.get("status", {}).get("podIP")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
    ]
