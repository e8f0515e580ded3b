"""Shadow traffic: during a shadow step the stable server mirrors a share of its requests to the candidate and
compares the candidate's answers with its own, on the same records.

The caller never waits for the shadow and never sees its answer: the records and the stable answer go on a bounded
queue (a full queue drops the mirror and counts it), and a few background threads post them to the shadow and
compare. Only counts leave the server (records compared, agreeing, the sum of absolute differences, failures by
kind); a record is kept no longer than its post.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from modelops.contract import serving as wire
from modelops.contract.serving import ShadowFailure

#: Mirrored requests waiting for a post; more are dropped (and counted) rather than held.
CAPACITY = 32
#: Posts in flight at once: a shadow slower than the stable server still gets most of its share.
SENDERS = 4
#: How long a post may take before the mirror counts the shadow unreachable.
TIMEOUT = 10.0


class Sampler:
    """Which requests to mirror: exactly `share` percent of them, spread evenly (every fourth one at 25)."""

    def __init__(self, share: int) -> None:
        self.share = share
        self._credit = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            self._credit += self.share
            if self._credit < 100:
                return False
            self._credit -= 100
            return True


@dataclass(frozen=True)
class Comparison:
    compared: int
    #: Records whose predicted class is the same (classifiers).
    agreed: int
    #: Sum over records of |stable - shadow| (regressors).
    difference: float


def compare(stable: list[Any], shadow: list[Any], categorical: bool) -> Comparison:
    """The two servers' predictions for the same records, compared record by record."""
    if categorical:
        return Comparison(len(stable), sum(a == b for a, b in zip(stable, shadow, strict=True)), 0.0)
    difference = sum(abs(float(a) - float(b)) for a, b in zip(stable, shadow, strict=True))
    return Comparison(len(stable), 0, difference)


class ShadowMetrics:
    """The comparison's counters (through BentoML's metrics API, so they join the server's /metrics): one set per
    process, labelled with the stable model and version and the shadow's version."""

    LABELS = ("model", "version", "shadow_version")

    def __init__(self) -> None:
        import bentoml

        names = list(self.LABELS)
        self.compared = bentoml.metrics.Counter(
            name=wire.SHADOW_COMPARED, documentation="Mirrored records compared with the shadow's.", labelnames=names
        )
        self.agreed = bentoml.metrics.Counter(
            name=wire.SHADOW_AGREED,
            documentation="Mirrored records the shadow classified as this server did.",
            labelnames=names,
        )
        self.difference = bentoml.metrics.Counter(
            name=wire.SHADOW_DIFFERENCE,
            documentation="Sum of the absolute differences between this server's and the shadow's predictions.",
            labelnames=names,
        )
        self.failures = bentoml.metrics.Counter(
            name=wire.SHADOW_FAILURES,
            documentation="Mirrored requests with no comparable answer: dropped (queue full), unreachable, rejected.",
            labelnames=[*names, "kind"],
        )


class Mirror:
    """Mirrors requests to the shadow at `url`, compares its answers with this server's, and counts."""

    def __init__(self, url: str, share: int, metrics: ShadowMetrics, labels: dict[str, str], categorical: bool) -> None:
        self.url = url
        self.sampler = Sampler(share)
        self.metrics = metrics
        self.labels = labels
        self.categorical = categorical
        self._queue: queue.Queue[tuple[list[dict[str, Any]], list[Any]]] = queue.Queue(CAPACITY)
        self._client = httpx.Client(timeout=TIMEOUT)
        for _ in range(SENDERS):
            threading.Thread(target=self._send, daemon=True, name="modelops-mirror").start()

    def offer(self, records: list[dict[str, Any]], predictions: list[Any]) -> None:
        """Mirror this answered request if it falls in the share; never blocks, never raises."""
        if not self.sampler.take():
            return
        try:
            self._queue.put_nowait((records, predictions))
        except queue.Full:
            self._failed("dropped")

    def _send(self) -> None:
        while True:
            records, predictions = self._queue.get()
            self._compare(records, predictions)

    def _compare(self, records: list[dict[str, Any]], predictions: list[Any]) -> None:
        try:
            answer = self._client.post(self.url, json={"records": records})
        except httpx.HTTPError:
            self._failed("unreachable")
            return
        try:
            shadow = answer.json()["predictions"] if answer.is_success else None
            result = compare(predictions, shadow, self.categorical) if isinstance(shadow, list) else None
        except (KeyError, TypeError, ValueError):  # not an answer of a server of this model: not comparable
            result = None
        if result is None:
            self._failed("rejected")
            return
        self.metrics.compared.labels(**self.labels).inc(result.compared)
        if self.categorical:
            self.metrics.agreed.labels(**self.labels).inc(result.agreed)
        else:
            self.metrics.difference.labels(**self.labels).inc(result.difference)

    def _failed(self, kind: ShadowFailure) -> None:
        self.metrics.failures.labels(**self.labels, kind=kind).inc()


def from_environment(model: str, version: str, categorical: bool) -> Mirror | None:
    """The mirror a shadow step asks of this server, or None outside one."""
    url = os.environ.get(wire.SHADOW_URL_ENV)
    if not url:
        return None
    labels = {"model": model, "version": version, "shadow_version": os.environ.get(wire.SHADOW_VERSION_ENV, "")}
    return Mirror(url, int(os.environ.get(wire.SHADOW_SHARE_ENV, "100")), ShadowMetrics(), labels, categorical)
