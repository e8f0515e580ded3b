"""The few Kubernetes API calls the controllers make, in one place: get, list, create, server-side apply,
status patches. Children are applied with one field manager, so a restart re-applies instead of duplicating."""

from __future__ import annotations

import functools
import os
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from .settings import FIELD_MANAGER, WORKERS


@functools.cache
def _dynamic() -> dynamic.DynamicClient:
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = WORKERS  # one connection per handler thread
    return dynamic.DynamicClient(client.ApiClient(configuration))


def resource(api_version: str, kind: str) -> Any:
    return _dynamic().resources.get(api_version=api_version, kind=kind)


def served(api_version: str, kind: str) -> bool:
    """Whether the API server serves this kind (an optional CRD, such as the Prometheus Operator's)."""
    try:
        resource(api_version, kind)
        return True
    except dynamic.exceptions.ResourceNotFoundError:
        return False


def get(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def list_(api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    return resource(api_version, kind).get(namespace=namespace, label_selector=selector).to_dict()["items"]


def apply(manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply as the operator's one field manager."""
    meta = manifest["metadata"]
    return (
        resource(manifest["apiVersion"], manifest["kind"])
        .server_side_apply(
            body=manifest,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        .to_dict()
    )


def create(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Create, or None when the name is taken (the caller decides what that means)."""
    try:
        return (
            resource(manifest["apiVersion"], manifest["kind"])
            .create(body=manifest, namespace=manifest["metadata"].get("namespace"), field_manager=FIELD_MANAGER)
            .to_dict()
        )
    except ApiException as error:
        if error.status == 409:
            return None
        raise


def merge_patch(previous: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that turns `previous` into `desired`: keys that went away become null."""
    patch: dict[str, Any] = {key: None for key in previous if key not in desired}
    for key, value in desired.items():
        old = previous.get(key)
        patch[key] = merge_patch(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return patch


def patch_status(api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge-patch the status subresource (never spec or metadata)."""
    resource(api_version, kind).status.patch(
        name=name,
        namespace=namespace,
        body={"status": status},
        content_type="application/merge-patch+json",
        field_manager=FIELD_MANAGER,
    )


def delete(api_version: str, kind: str, namespace: str, name: str) -> None:
    """Delete if present (foreground, so its pods go with it)."""
    try:
        resource(api_version, kind).delete(name=name, namespace=namespace, propagation_policy="Foreground")
    except ApiException as error:
        if error.status != 404:
            raise
