"""Argo CD health checks for the four kinds, merged into Argo CD's argocd-cm when the chart asks for it.

The chart mounts them as files named like argocd-cm's keys (`resource.customizations.health.<group>_<Kind>`).
Server-side apply of only those keys leaves the rest of argocd-cm to whoever manages it (Argo CD's own chart).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from . import config, kube

ARGOCD_CM = "argocd-cm"


def health_checks(folder: Path) -> dict[str, str]:
    """The argocd-cm keys in a mounted ConfigMap folder (its hidden `..data` links are not keys)."""
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def argocd_cm(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": ARGOCD_CM, "namespace": namespace},
        "data": data,
    }


@kopf.on.startup()
def install_health_checks(logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any) -> None:
    if not (config.ARGOCD_NAMESPACE and config.ARGOCD_HEALTH_DIR):
        return
    data = health_checks(Path(config.ARGOCD_HEALTH_DIR))
    try:
        kube.apply(argocd_cm(config.ARGOCD_NAMESPACE, data))
    except ApiException as error:  # Argo CD absent or not ours to touch: serving models matters more
        logger.warning(f"Argo CD health checks not installed in {config.ARGOCD_NAMESPACE}/{ARGOCD_CM}: {error.reason}")
        return
    logger.info(f"Argo CD health checks installed in {config.ARGOCD_NAMESPACE}/{ARGOCD_CM}: {', '.join(data)}")
