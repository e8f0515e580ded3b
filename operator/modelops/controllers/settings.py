"""Operator-wide Kopf settings that keep ModelOps GitOps-safe."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf

FIELD_MANAGER = "modelops"
#: Threads for the (synchronous) handlers: they wait on the API server, not on the CPU.
WORKERS = 20
#: Those threads: Kopf runs the synchronous handlers on them, and the work queues (`workqueue`) their work.
HANDLER_THREADS = ThreadPoolExecutor(WORKERS, thread_name_prefix="handler")
#: The finalizer earlier versions put on objects with timers or daemons; Kopf removes it now (see `spawning`).
FINALIZER = "modelops.io/finalizer"


class Essences(kopf.StatusDiffBaseStorage):
    """Kopf's own essence of an object (its spec and such, its labels and annotations: what a change is told by),
    built from those parts alone. Kopf builds it on every event of every watched object by copying the whole body,
    managed fields and status included, only to drop them: a seventh of the operator's CPU in a burst of 1,000
    deployments, mostly for Deployments and Services, whose essence no handler reads."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        extra = list(extra_fields or [])
        if extra:  # fields picked from anywhere, the status too: Kopf's own way
            return super().build(body=body, extra_fields=extra)
        meta = body.get("metadata", {})
        parts = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        parts["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
        return super().build(body=kopf.Body(cast(kopf.RawBody, parts)))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Kopf's bookkeeping goes to status, never to annotations: the operator writes no metadata of a user's
    # object (no finalizer either), so Argo CD and Flux see no drift.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = Essences(field="status.kopf.diffbase")
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.execution.executor = HANDLER_THREADS
