"""Operator-wide Kopf settings that keep ModelOps GitOps-safe."""

from __future__ import annotations

import logging
from typing import Any

import kopf

FIELD_MANAGER = "modelops"
#: Threads for the (synchronous) handlers: they wait on the API server, not on the CPU.
WORKERS = 20
FINALIZER = "modelops.io/finalizer"
#: The Kopf peering object replicas share (the chart creates it: a ClusterKopfPeering, or a KopfPeering per namespace).
PEERING = "modelops"


def standby_priority(started: float) -> int:
    """Kopf peering priority: the replica that started first works, later ones wait as standbys.

    Kopf pauses an operator while a peer with a higher priority lives, and pauses *all* on a tie, so every replica
    needs its own: the negated start time in milliseconds.
    """
    return -int(started * 1000)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Kopf's bookkeeping goes to status, never to annotations: the operator writes no metadata of a user's
    # object but its finalizer, so Argo CD and Flux see no drift.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.kopf.diffbase")
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.execution.max_workers = WORKERS
