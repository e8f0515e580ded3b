"""Start the operator: Kopf with every controller, a liveness endpoint and Prometheus metrics."""

from __future__ import annotations

import logging
import signal
import threading

import kopf
import prometheus_client

from modelops import __version__

from . import (  # noqa: F401  (importing registers the handlers)
    argocd,
    kube,
    leadership,
    modelbuild,
    modeldeployment,
    modelmonitor,
    modelversion,
    settings,
    spawning,
)
from .audit import AUDIT
from .metrics import OPERATOR_INFO
from .settings import HANDLER_THREADS


def run_operator(*, namespaces: list[str], liveness: str, metrics_port: int, lease: str | None = None) -> None:
    """Run until interrupted; watches every namespace unless some are given. With a `lease`, work only while holding
    it (leader election): until then, wait as a standby that answers its liveness probe and touches nothing."""
    kopf.configure(verbose=False)  # Kopf's own log format, as `kopf run` sets it up
    # httpx logs every request's URL at INFO: a webhook URL is a secret (its token), so only its warnings pass.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # Kopf tells every handler call's success at INFO: 30,000 lines for 1,000 new deployments, and a sixteenth of the
    # operator's CPU. A failure or a retry is a warning or an error, and still shows.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    OPERATOR_INFO.info({"version": __version__})
    if metrics_port:
        prometheus_client.start_http_server(metrics_port)
    elector = _lead(lease, liveness) if lease else None
    spawning.without_finalizers(kopf.get_default_registry())
    operator_settings = kopf.OperatorSettings()
    # Watching listed namespaces, the operator has no cluster-wide permission: Kopf must not try to list namespaces
    # or CRDs (it would retry for a minute, then carry on); the kinds it serves are found once, at startup.
    operator_settings.scanning.disabled = bool(namespaces)
    try:
        kopf.run(
            settings=operator_settings,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,  # one replica works: the Lease decides, not Kopf's peering
            liveness_endpoint=liveness,
        )
    finally:  # a stopping operator starts no more work, stores what it decided last, then lets a standby take over
        HANDLER_THREADS.shutdown(wait=False, cancel_futures=True)
        if not AUDIT.flush(timeout=10):
            logging.getLogger("modelops.audit").error("audit lines still waited for the store at exit")
        if elector is not None:
            elector.release()


def _lead(lease: str, liveness: str) -> leadership.Elector | None:
    """Wait for the Lease, then keep it renewed (losing it ends the process); None if stopped while waiting."""
    elector = leadership.Elector(kube.api_client(), leadership.lease_namespace(), lease, leadership.identity())
    stopping = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stopping.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with leadership.answering_liveness(liveness):
            if not elector.acquire(stopping):
                raise SystemExit(0)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    elector.keep(lost=leadership.stop_at_once)
    return elector
