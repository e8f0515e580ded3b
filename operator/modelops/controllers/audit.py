"""The audit trail's store and writer: lines go to a folder (`file://`) or an S3 bucket (`s3://bucket/prefix`) the
administrator names (the chart's `audit.uri`), written with the operator's own credentials (the chart's
`audit.credentialsSecret`: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION). Tenants need
no write access to it, so none can rewrite their history.

Telling an Event never waits for the store: lines queue (bounded) and one thread writes them in order, retrying
while the store is down; `modelops_audit_pending` says how many wait.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx
import prometheus_client

from modelops.resources.audit import AuditRecord

log = logging.getLogger("modelops.audit")

AUDIT_URI_ENV = "MODELOPS_AUDIT_URI"
#: Lines that may wait for the store; past it the oldest wait is dropped, counted, and said in the log.
CAPACITY = 100_000
PENDING = prometheus_client.Gauge("modelops_audit_pending", "Audit lines waiting for the audit store.")
WRITTEN = prometheus_client.Counter(
    "modelops_audit_lines", "Audit lines by outcome (written, or dropped when the queue was full).", ["outcome"]
)


class Store(Protocol):
    def put(self, key: str, body: bytes) -> None: ...
    def keys(self, prefix: str, start_after: str) -> list[str]: ...
    def get(self, key: str) -> bytes: ...


class FolderStore:
    """A folder: for a single machine, and for tests."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def keys(self, prefix: str, start_after: str) -> list[str]:
        folder = self.root / prefix
        found = (str(p.relative_to(self.root)) for p in folder.glob("*.json")) if folder.is_dir() else iter(())
        return sorted(k for k in found if k > start_after)

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class S3Store:
    """An S3 bucket through its REST API (path-style, Signature V4): a few requests, no SDK in the operator."""

    def __init__(self, bucket: str, prefix: str, env: Mapping[str, str]) -> None:
        from httpx_auth import AWS4Auth

        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.endpoint = (env.get("AWS_ENDPOINT_URL") or f"https://s3.{region}.amazonaws.com").rstrip("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        auth = AWS4Auth(
            access_id=env.get("AWS_ACCESS_KEY_ID", ""),
            secret_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
            region=region,
            service="s3",
        )
        self.http = httpx.Client(auth=auth, timeout=30)

    def _path(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key) if p)

    def put(self, key: str, body: bytes) -> None:
        url = f"{self.endpoint}/{self.bucket}/{quote(self._path(key))}"
        self.http.put(url, content=body, headers={"Content-Type": "application/json"}).raise_for_status()

    def keys(self, prefix: str, start_after: str) -> list[str]:
        found: list[str] = []
        params = {"list-type": "2", "prefix": self._path(prefix), "start-after": self._path(start_after)}
        while True:
            answer = self.http.get(f"{self.endpoint}/{self.bucket}", params=params)
            answer.raise_for_status()
            root = ElementTree.fromstring(answer.content)
            space = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            for item in root.iter(f"{space}Contents"):
                found.append(item.findtext(f"{space}Key", "").removeprefix(self.prefix + "/" if self.prefix else ""))
            token = root.findtext(f"{space}NextContinuationToken")
            if root.findtext(f"{space}IsTruncated") != "true" or not token:
                return sorted(found)
            params = {**params, "continuation-token": token}

    def get(self, key: str) -> bytes:
        answer = self.http.get(f"{self.endpoint}/{self.bucket}/{quote(self._path(key))}")
        answer.raise_for_status()
        return answer.content


def open_store(uri: str, env: Mapping[str, str] | None = None) -> Store:
    """The store behind an audit URI; ValueError naming the URI's form otherwise."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return FolderStore(Path(parts.path))
    if parts.scheme == "s3" and parts.netloc:
        env = os.environ if env is None else env
        if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
            raise ValueError(f"audit URI {uri!r}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for its store")
        return S3Store(parts.netloc, parts.path, env)
    raise ValueError(f"audit URI {uri!r}: use file:///folder or s3://bucket/prefix")


class AuditLog:
    """Lines queued for the store, written in order by one thread that retries each until it is stored."""

    def __init__(self, store: Store | None, retry_seconds: float = 5.0) -> None:
        self.store = store
        self.retry_seconds = retry_seconds
        self.lines: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.sequence = itertools.count()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def append(self, record: AuditRecord) -> None:
        if self.store is None:
            return
        if self.lines.qsize() >= CAPACITY:
            WRITTEN.labels("dropped").inc()
            log.error("the audit store has not answered for %d lines: this one is dropped", CAPACITY)
            return
        self.lines.put((record.key(next(self.sequence)), record.line().encode()))
        PENDING.set(self.lines.qsize())
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._write, name="audit-log", daemon=True)
                self.thread.start()

    def _write(self) -> None:
        assert self.store is not None
        while True:
            key, body = self.lines.get()
            while True:
                try:
                    self.store.put(key, body)
                    break
                except Exception as error:  # the store is down or refuses: keep the line, try again
                    log.warning("cannot write to the audit store (%s); retrying", type(error).__name__)
                    threading.Event().wait(self.retry_seconds)
            WRITTEN.labels("written").inc()
            self.lines.task_done()
            PENDING.set(self.lines.qsize())

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued line is stored (the operator's cleanup); False if some still wait."""
        done = threading.Event()

        def joined() -> None:
            self.lines.join()
            done.set()

        threading.Thread(target=joined, daemon=True).start()
        return done.wait(timeout)


def from_environment() -> AuditLog:
    uri = os.environ.get(AUDIT_URI_ENV, "")
    return AuditLog(open_store(uri) if uri else None)


#: The operator's audit log (none unless the chart sets `audit.uri`).
AUDIT = from_environment()
