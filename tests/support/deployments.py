"""Model `cancer` served on the cluster: its versions, their approval, its ModelDeployment, what its status says,
and traffic to its Service."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sklearn.datasets import load_breast_cancer

from modelops.devcluster.traffic import Traffic, service_url
from tests.support.kube import APPROVERS, Kubectl
from tests.support.storage import STORAGE_SECRET
from tests.support.waiting import eventually

MODEL = "cancer"


def version(number: int, result: dict) -> dict[str, Any]:
    """ModelVersion `cancer-v<number>` of a trainer's result (artifact, metrics, baseline)."""
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"{MODEL}-v{number}", "labels": {"modelops.io/model": MODEL}},
        "spec": {
            "model": MODEL,
            "version": number,
            "task": "classification",
            "artifact": {"uri": result["artifactUri"], "digest": result["artifactDigest"]},
            "metrics": result["metrics"],
            "baselineUri": result["baselineUri"],
        },
    }


def approve(kubectl: Kubectl, number: int) -> None:
    """Version `number` approved by alice, an approver, and seen Approved."""
    patch = {"spec": {"approval": {"state": "Approved", "by": "alice", "reason": "test"}}}
    kubectl.as_user("alice", APPROVERS).run(
        "patch", "mv", f"{MODEL}-v{number}", "--type=merge", "-p", json.dumps(patch)
    )
    eventually(
        lambda: kubectl.get("mv", f"{MODEL}-v{number}").get("status", {}).get("stage") == "Approved", what="Approved"
    )


def deployment(**spec: Any) -> dict[str, Any]:
    """A deployment of the model whose servers read artifacts with the namespace's store Secret."""
    runtime = {"credentialsSecret": STORAGE_SECRET, **spec.pop("runtime", {})}
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "cancer"},
        "spec": {"model": MODEL, "replicas": 2, "runtime": runtime, **spec},
    }


def status(kubectl: Kubectl) -> dict[str, Any]:
    """The status of ModelDeployment `cancer` (empty until the operator writes one)."""
    return kubectl.get("md", "cancer").get("status", {})


def condition(kubectl: Kubectl, type_: str) -> dict[str, Any]:
    """ModelDeployment `cancer`'s condition of this type (empty if it has none)."""
    return next((c for c in status(kubectl).get("conditions", []) if c["type"] == type_), {})


def routed_url(kubectl: Kubectl, service: str = MODEL, timeout: float = 30) -> str:
    """The Service's address, once it answers: Ready says the pods are, and each node's Service rules follow a
    moment later (until then a caller is refused, or told there is no route: seen in CI)."""
    url = service_url(kubectl.get("service", service))

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    eventually(answers, timeout=timeout, what=f"the Service {service} routing to a ready pod")
    return url


def traffic(kubectl: Kubectl, records: list[dict] | None = None) -> Traffic:
    """Requests to the deployment's Service, which kube-proxy spreads over the ready pods of both tracks."""
    records = records or load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(5).to_dict(
        orient="records"
    )
    return Traffic(service_url(kubectl.get("service", MODEL)), records)
