"""Delayed labels: the answers a server keeps so that a label posted later joins the answer it labels.

A server keeps, per record it answered, only the request id, the record's index in the request, the prediction and
the positive class's score, never a feature value; in a SQLite file on the pod's own volume, which its worker
processes share, for `retention` seconds and at most `capacity` records (the oldest go first). A label joins once:
the record is forgotten as it joins. A label may reach any pod behind the Service: what a pod does not hold, it
hands to its peers (the addresses of the deployment's headless Service), which hand nothing on.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modelops.contract import serving as wire

#: Where the answers are kept: the pod's emptyDir, never its read-only root (a server outside a pod is told elsewhere).
STORE = Path("/tmp/modelops-answers.sqlite3")
STORE_ENV = "MODELOPS_FEEDBACK_STORE"
#: Most labels in one request (`POST /feedback`).
MAX_LABELS = 10_000
#: How long a peer may take to answer a hand-over.
PEER_TIMEOUT = 5.0
#: Every how many requests kept the expired and surplus ones are removed.
PRUNE_EVERY = 64

_REQUEST_ID = re.compile(wire.REQUEST_ID_PATTERN)


def valid_request_id(value: str) -> bool:
    return bool(_REQUEST_ID.fullmatch(value))


@dataclass(frozen=True)
class Kept:
    """One answered record as kept: its prediction and, for two classes, the positive class's score."""

    prediction: Any
    score: float | None


@dataclass(frozen=True)
class Label:
    """A label for record `index` (0 for a one-record request) of request `request_id`."""

    request_id: str
    label: Any
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "label": self.label, "index": self.index}


@dataclass(frozen=True)
class Answers:
    """What one request was answered, to keep: a prediction per record, and the positive class's scores."""

    request_id: str
    predictions: list[Any]
    scores: list[float] | None


class AnswerLog:
    """The answers this pod gave, for labels to join; shared by its worker processes through one file."""

    def __init__(self, path: Path, retention: float, capacity: int) -> None:
        self.retention, self.capacity = retention, capacity
        self._lock = threading.Lock()
        self._kept_since_prune = 0
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a pod that dies loses its answers anyway (emptyDir)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (request TEXT NOT NULL, record INTEGER NOT NULL, "
            "prediction TEXT NOT NULL, score REAL, at REAL NOT NULL, PRIMARY KEY (request, record)) WITHOUT ROWID"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS answers_at ON answers (at)")

    def keep(self, answers: Sequence[Answers], now: float) -> None:
        """Keep the answers of a batch's requests in one transaction, not one per request: under load a batch holds
        tens of requests (a request id used again replaces the earlier answers)."""
        rows = [
            (answer.request_id, i, json.dumps(p), None if answer.scores is None else float(answer.scores[i]), now)
            for answer in answers
            for i, p in enumerate(answer.predictions)
        ]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)", rows)
            self._kept_since_prune += len(answers)
            if self._kept_since_prune >= PRUNE_EVERY:
                self._kept_since_prune = 0
                self._prune(now)

    def take(self, request_id: str, index: int, now: float) -> Kept | None:
        """The answer a label joins, forgotten as it is taken; None when unknown or expired."""
        with self._lock:
            row = self._db.execute(
                "DELETE FROM answers WHERE request = ? AND record = ? AND at >= ? RETURNING prediction, score",
                (request_id, index, now - self.retention),
            ).fetchone()
        return None if row is None else Kept(json.loads(row[0]), row[1])

    def prune(self, now: float) -> None:
        with self._lock:
            self._prune(now)

    def _prune(self, now: float) -> None:
        self._db.execute("DELETE FROM answers WHERE at < ?", (now - self.retention,))
        self._db.execute(
            "DELETE FROM answers WHERE at <= (SELECT at FROM answers ORDER BY at DESC LIMIT 1 OFFSET ?)",
            (self.capacity,),
        )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])


def parse_labels(body: list[dict[str, Any]]) -> list[Label]:
    """Labels as posted, or ValueError naming what is wrong (by position, never quoting a value)."""
    if not body:
        raise ValueError("labels: send at least one label")
    if len(body) > MAX_LABELS:
        raise ValueError(f"labels: at most {MAX_LABELS} labels per request, got {len(body)}")
    labels = []
    for i, item in enumerate(body):
        request_id, index = item.get("requestId"), item.get("index", 0)
        if not isinstance(request_id, str) or not valid_request_id(request_id):
            raise ValueError(f"labels[{i}].requestId: a request id as the answer gave it is required")
        if "label" not in item or item["label"] is None:
            raise ValueError(f"labels[{i}].label: required")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError(f"labels[{i}].index: the record's position in its request, from 0")
        labels.append(Label(request_id, item["label"], index))
    return labels


def peers(host: str, port: int, own: str | None) -> list[str]:
    """The other serving pods' base URLs, from the headless Service's addresses (none when it cannot resolve)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except OSError:
        return []
    return [f"http://{address}:{port}" for address in sorted(addresses - {own})]


def hand_over(labels: list[Label], urls: list[str], client: httpx.Client) -> list[Label]:
    """Hand labels this pod does not hold to its peers, each taking what it holds; the labels nobody held."""
    left = labels
    for url in urls:
        if not left:
            break
        try:
            answer = client.post(
                f"{url}/feedback",
                json={"labels": [label.to_json() for label in left]},
                headers={wire.FORWARDED_HEADER: "1"},
                timeout=PEER_TIMEOUT,
            )
            answer.raise_for_status()
            unknown = {(u["requestId"], u.get("index", 0)) for u in answer.json().get("unknown", [])}
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            continue  # a peer going away holds nothing any more
        left = [label for label in left if (label.request_id, label.index) in unknown]
    return left


def from_environment() -> AnswerLog | None:
    """The answer log `spec.feedback` asks of this server, or None when labels are not taken."""
    retention = os.environ.get(wire.FEEDBACK_RETENTION_ENV)
    if not retention:
        return None
    store = Path(os.environ.get(STORE_ENV, str(STORE)))
    return AnswerLog(store, float(retention), int(os.environ.get(wire.FEEDBACK_CAPACITY_ENV, "100000")))
