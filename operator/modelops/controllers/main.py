"""Start the operator: Kopf with every controller, a liveness endpoint and Prometheus metrics."""

from __future__ import annotations

import logging
import time

import kopf
import prometheus_client

from modelops import __version__

from . import argocd, modelbuild, modeldeployment, modelmonitor, modelversion, settings, spawning  # noqa: F401  (importing registers the handlers)
from .audit import AUDIT
from .metrics import OPERATOR_INFO


def run_operator(*, namespaces: list[str], liveness: str, metrics_port: int, standalone: bool) -> None:
    """Run until interrupted; watches every namespace unless some are given."""
    kopf.configure(verbose=False)  # Kopf's own log format, as `kopf run` sets it up
    # httpx logs every request's URL at INFO: a webhook URL is a secret (its token), so only its warnings pass.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    OPERATOR_INFO.info({"version": __version__})
    if metrics_port:
        prometheus_client.start_http_server(metrics_port)
    spawning.without_finalizers(kopf.get_default_registry())
    operator_settings = kopf.OperatorSettings()
    # Watching listed namespaces, the operator has no cluster-wide permission: Kopf must not try to list namespaces
    # or CRDs (it would retry for a minute, then carry on); the kinds it serves are found once, at startup.
    operator_settings.scanning.disabled = bool(namespaces)
    # With peering (the chart runs --no-standalone), a replica starts paused and works only once the peering says it
    # is the earliest started: a standby never acts, not even for a moment while it starts.
    operator_settings.peering.name = settings.PEERING
    operator_settings.peering.mandatory = not standalone
    operator_settings.peering.priority = settings.standby_priority(time.time())
    try:
        kopf.run(
            settings=operator_settings,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone,
            liveness_endpoint=liveness,
        )
    finally:  # a stopping operator stores what it decided last
        if not AUDIT.flush(timeout=10):
            logging.getLogger("modelops.audit").error("audit lines still waited for the store at exit")
