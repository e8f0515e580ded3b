"""Operator-wide Kopf settings that keep ModelOps GitOps-safe."""

from __future__ import annotations

import logging
from typing import Any

import kopf

FIELD_MANAGER = "modelops"
#: Threads for the (synchronous) handlers: they wait on the API server, not on the CPU.
WORKERS = 20
#: The finalizer earlier versions put on objects with timers or daemons; Kopf removes it now (see `spawning`).
FINALIZER = "modelops.io/finalizer"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Kopf's bookkeeping goes to status, never to annotations: the operator writes no metadata of a user's
    # object (no finalizer either), so Argo CD and Flux see no drift.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.kopf.diffbase")
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.execution.max_workers = WORKERS
