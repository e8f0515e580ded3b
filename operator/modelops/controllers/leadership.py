"""Leader election through a Lease (coordination.k8s.io/v1), as client-go's leaderelection does it: one replica
works, the others wait, and a standby takes over within `lease_seconds` + `retry_seconds` of the leader's crash.

Why not Kopf's peering: a crashed replica's peering entry lives on for its whole lifetime (60 s), and two replicas
that start together both work until each sees the other's entry. Why not the Kubernetes client's own
`leaderelection`: it locks a ConfigMap, logs at every retry and never releases on exit.

Never two at once:
- a standby judges a lease expired by its own clock: the record must stay unchanged for `lease_seconds` from the
  moment the standby saw it (clocks of different nodes are never compared);
- a take or a renewal replaces the Lease at the resourceVersion it read, so of two takers one gets a conflict;
- a leader that cannot renew for `renew_deadline_seconds` (shorter than the lease) stops the process at once,
  before any standby may take over; the kubelet restarts it as a standby.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

#: What a Lease call may end in besides an answer: the API server's refusal, or no answer at all (a refused
#: connection, a timeout: the server restarts, or this node is cut off). Either way the holder is not known.
UNANSWERED = (ApiException, urllib3.exceptions.HTTPError)

log = logging.getLogger("modelops.leadership")

Move = Literal["take", "renew", "wait"]
#: What a replica logs when it starts to work (the tests read it).
LEADING = "leading: this replica holds Lease"


@dataclass(frozen=True)
class Timing:
    """client-go's defaults halved: a crash is followed within about 17 s, well inside the 30 s asked for. A leader
    that last renewed at t stops by t + renew deadline + a retry + a call's timeout (a retry): before t + lease."""

    lease_seconds: int = 15
    renew_deadline_seconds: float = 10
    retry_seconds: float = 2


@dataclass(frozen=True)
class Holder:
    """What a Lease says of its holder; `version` is the object's resourceVersion."""

    identity: str
    version: str
    transitions: int = 0
    acquired: dt.datetime | None = None


def move(holder: Holder | None, me: str, unchanged_since: float, now: float, timing: Timing) -> Move:
    """What a candidate does with the Lease as it found it. `unchanged_since` is when this candidate first saw this
    very record (by its own clock)."""
    if holder is None or not holder.identity:
        return "take"  # no Lease yet, or released by a leader on its way out
    if holder.identity == me:
        return "renew"
    return "take" if now - unchanged_since >= timing.lease_seconds else "wait"


def identity() -> str:
    """Unique per process: the pod's name (the chart sets POD_NAME) and a random suffix, so a restarted container
    never mistakes its predecessor's lease for its own."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def lease_namespace() -> str:
    """The operator's own namespace: the chart's POD_NAMESPACE, or the service account's."""
    given = os.environ.get("POD_NAMESPACE")
    if given:
        return given
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as file:
            return file.read().strip()
    except OSError:
        return "default"


class Elector:
    """One candidate for one Lease."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, me: str, timing: Timing | None = None) -> None:
        self.namespace, self.name, self.me = namespace, name, me
        self.timing = timing or Timing()
        self.api = client.CoordinationV1Api(api)
        self._seen: tuple[str, float] | None = None  # (resourceVersion, when first seen)
        self._held: Holder | None = None
        self._lock = threading.Lock()  # a renewal and the release never overlap
        # A call that hangs (a partitioned leader) must not outlast the lease: it ends within a retry period.
        self._timeout = self.timing.retry_seconds
        self._released = False

    def acquire(self, stopping: threading.Event) -> bool:
        """Wait until this candidate leads (True), or until `stopping` (False)."""
        told = None
        while not stopping.is_set():
            holder = self._attempt()
            if holder is not None and holder.identity == self.me:
                log.info("%s %s/%s", LEADING, self.namespace, self.name)
                return True
            if holder is not None and holder.identity != told:
                told = holder.identity
                log.info("standby: Lease %s/%s is held by %s", self.namespace, self.name, told)
            stopping.wait(self.timing.retry_seconds)
        return False

    def keep(self, lost: Callable[[str], None]) -> threading.Thread:
        """Renew in the background every `retry_seconds`; call `lost` (which must stop all work) once renewing has
        failed for `renew_deadline_seconds`, or another holder is found."""

        def renew() -> None:
            last = time.monotonic()
            while True:
                time.sleep(self.timing.retry_seconds)
                with self._lock:
                    if self._released:
                        return None
                    holder = self._attempt()
                if holder is not None and holder.identity == self.me:
                    last = time.monotonic()
                elif holder is not None and holder.identity:
                    return lost(f"Lease {self.namespace}/{self.name} is held by {holder.identity} now")
                elif time.monotonic() - last >= self.timing.renew_deadline_seconds:
                    return lost(
                        f"could not renew Lease {self.namespace}/{self.name} for {time.monotonic() - last:.0f} s"
                    )

        thread = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """On a clean exit: leave the Lease empty, so a standby takes over at its next retry."""
        with self._lock:
            self._released = True
            if self._held is None:
                return
            body = self._body(Holder("", self._held.version, self._held.transitions), lease_seconds=1)
            try:
                self.api.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=self._timeout)
                log.info("released Lease %s/%s", self.namespace, self.name)
            except UNANSWERED as error:  # held by another already, or unreachable: it expires on its own
                log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, _why(error))

    def _attempt(self) -> Holder | None:
        """Read the Lease and take or renew it when `move` says so; the holder afterwards (None: unknown)."""
        try:
            found = self._read()
        except UNANSWERED as error:
            log.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, _why(error))
            return None
        now = time.monotonic()
        if found is not None and (self._seen is None or self._seen[0] != found.version):
            self._seen = (found.version, now)
        unchanged_since = self._seen[1] if self._seen else now
        if move(found, self.me, unchanged_since, now, self.timing) == "wait":
            return found
        return self._write(found)

    def _read(self) -> Holder | None:
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        spec = lease.spec
        return Holder(
            spec.holder_identity or "", lease.metadata.resource_version, spec.lease_transitions or 0, spec.acquire_time
        )

    def _write(self, found: Holder | None) -> Holder | None:
        """Take or renew at the resourceVersion read: a conflict means another candidate was faster."""
        mine = found is not None and found.identity == self.me
        transitions = (found.transitions if found else 0) + (0 if mine else 1)
        acquired = found.acquired if mine and found else None
        wanted = Holder(self.me, found.version if found else "", transitions, acquired)
        try:
            if found is None:
                written = self.api.create_namespaced_lease(
                    self.namespace, self._body(wanted), _request_timeout=self._timeout
                )
            else:
                written = self.api.replace_namespaced_lease(
                    self.name, self.namespace, self._body(wanted), _request_timeout=self._timeout
                )
        except UNANSWERED as error:
            if isinstance(error, ApiException) and error.status in (409, 422):
                return None  # someone else wrote it first: read again at the next retry
            log.warning("cannot write Lease %s/%s: %s", self.namespace, self.name, _why(error))
            return None
        self._held = Holder(self.me, written.metadata.resource_version, transitions, written.spec.acquire_time)
        self._seen = (self._held.version, time.monotonic())
        return self._held

    def _body(self, holder: Holder, lease_seconds: int | None = None) -> client.V1Lease:
        now = dt.datetime.now(dt.UTC)
        return client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.name, namespace=self.namespace, resource_version=holder.version or None
            ),
            spec=client.V1LeaseSpec(
                holder_identity=holder.identity or None,
                lease_duration_seconds=lease_seconds or self.timing.lease_seconds,
                acquire_time=holder.acquired or now,
                renew_time=now,
                lease_transitions=holder.transitions,
            ),
        )


def _why(error: Exception) -> str:
    """The API server's reason, or the kind of failure when it did not answer (never the server's address)."""
    return str(error.reason) if isinstance(error, ApiException) else type(error).__name__


def stop_at_once(reason: str) -> None:
    """What a leader does when it may no longer lead: exit now, not after a graceful stop that would outlast the
    lease (the kubelet restarts the container, which then waits as a standby)."""
    log.critical("no longer leading (%s): exiting at once", reason)
    logging.shutdown()
    os._exit(1)


@contextlib.contextmanager
def answering_liveness(url: str) -> Iterator[None]:
    """Answer the liveness endpoint while a standby waits, since Kopf (which serves it) starts only once leading: a
    waiting standby is alive."""
    parts = urlsplit(url)

    class Alive(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == parts.path else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:  # probes are not news
            pass

    server = ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), Alive)
    thread = threading.Thread(target=server.serve_forever, name="standby-liveness", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
