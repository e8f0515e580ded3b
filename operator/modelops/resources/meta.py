"""Names, labels and owner references every child carries."""

from __future__ import annotations

import hashlib
from typing import Any

from modelops.api.v1alpha1 import API_VERSION
from modelops.contract.serving import CONTAINER_ENV

PART_OF = "modelops"
MANAGED_BY = "modelops"
MODEL_LABEL = "modelops.io/model"
VERSION_LABEL = "modelops.io/version"
BUILD_LABEL = "modelops.io/build"
#: On a ModelBuild a monitor started for retraining: the monitor's name.
MONITOR_LABEL = "modelops.io/monitor"
#: Pods with this label run the ModelOps runtime (`trainer` or `server`); the dev cluster runs them for real.
RUNTIME_LABEL = "modelops.io/runtime"
MAX_NAME = 63


def child_name(base: str, suffix: str) -> str:
    """`<base>-<suffix>`, deterministic and at most 63 characters (long bases get a hash instead of a tail)."""
    name = f"{base}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[: MAX_NAME - len(suffix) - 10].rstrip('-')}-{digest}-{suffix}"


def version_name(model: str, version: int) -> str:
    return f"{model}-v{version}"


def labels(*, model: str, instance: str, component: str, version: int | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": model,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        MODEL_LABEL: model,
    }
    if version is not None:
        out["app.kubernetes.io/version"] = f"v{version}"
        out[VERSION_LABEL] = str(version)
    return out


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def env_from_secrets(*names: str | None) -> list[dict[str, Any]]:
    """`envFrom` for the Secrets a spec names (each once, in order): credentials of a dataset or an artifact store."""
    return [{"secretRef": {"name": name}} for name in dict.fromkeys(n for n in names if n)]


def container_env() -> list[dict[str, str]]:
    """The environment every runtime container gets (its writable home, no usage tracking)."""
    return [{"name": name, "value": value} for name, value in CONTAINER_ENV]
