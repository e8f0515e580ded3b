"""ModelBuilds as the integration tests write them, and waiting for one to finish."""

from __future__ import annotations

from typing import Any

from tests.support.kube import Kubectl
from tests.support.storage import STORAGE_SECRET
from tests.support.waiting import eventually

#: Build `cancer-1` of model `cancer`: a logistic regression on breast_cancer, its artifacts in the dev store.
BUILD: dict[str, Any] = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelBuild",
    "metadata": {"name": "cancer-1"},
    "spec": {
        "model": "cancer",
        "task": "classification",
        "dataset": {
            "uri": "sklearn://breast_cancer",
            "target": "target",
            "columns": [{"name": "mean radius", "type": "number", "minimum": 0, "maximum": 100}],
        },
        "trainer": {
            "estimator": {"className": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
            "activeDeadline": "10m",
            "retries": 2,
        },
        "evaluation": {"thresholds": [{"metric": "accuracy", "min": 0.8}]},
        "artifacts": {"uri": "s3://modelops", "credentialsSecret": STORAGE_SECRET},
    },
}


def phase(kubectl: Kubectl, name: str, wanted: tuple[str, ...] = ("Succeeded", "Failed"), timeout: float = 240) -> dict:
    """Build `name` once its phase is one of `wanted` (by default: once it has finished)."""
    return eventually(
        lambda: (b := kubectl.get("mb", name)).get("status", {}).get("phase") in wanted and b,
        timeout=timeout,
        what=f"build {name} in {wanted}",
    )
