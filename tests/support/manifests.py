"""Documents the tests apply as they are, or copy and change: the examples, a ModelVersion record, an editor's
Role, and pods of the project's image as restricted as the chart's."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.paths import ROOT

#: Each kind's example from examples/, by kind.
EXAMPLES = {
    doc["kind"]: doc
    for path in sorted((ROOT / "examples").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
}

MODEL_VERSION: dict[str, Any] = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "breast-cancer-v1"},
    "spec": {
        "model": "breast-cancer",
        "version": 1,
        "task": "classification",
        "artifact": {"uri": "file:///tmp/modelops/artifacts/breast-cancer/v1", "digest": "sha256:" + "a" * 64},
        "metrics": {"accuracy": 0.95, "rocAuc": 0.99},
        "features": [{"name": "mean radius", "type": "number"}],
        "lineage": {"build": "breast-cancer-1", "datasetUri": "sklearn://breast_cancer", "datasetDigest": "abc"},
        "approval": {"state": "Pending"},
    },
}

#: Every verb on model versions (RBAC), which does not make its holder an approver.
EDITOR_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "mv-editor"},
    "rules": [{"apiGroups": ["modelops.io"], "resources": ["modelversions"], "verbs": ["*"]}],
}


def restricted_pod(image: str, command: list[str], **container: object) -> dict:
    """A pod spec of the image as restricted as the chart's pods (read-only, no privilege, every capability gone)."""
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "main",
                "image": image,
                "command": command,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                **container,
            }
        ],
    }


def web_server(image: str) -> list[dict]:
    """A pod of the image serving its own /opt/venv over HTTP, and its Service."""
    serve = ["python3", "-m", "http.server", "8080", "--directory", "/opt/venv"]
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": restricted_pod(image, serve, readinessProbe=probe),
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return [pod, service]
