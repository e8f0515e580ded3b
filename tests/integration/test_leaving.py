"""Leaving cleanly: nothing the operator serves holds its namespace back once the operator is gone (after
`helm uninstall`, or killed), and an object an earlier version put a finalizer on is released."""

from __future__ import annotations

from modelops.controllers.settings import FINALIZER
from tests.support.builds import BUILD, phase
from tests.support.kube import Kubectl
from tests.support.operator import Operator
from tests.support.waiting import eventually


def monitor(name: str, finalizers: list[str] | None = None) -> dict:
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": name, **({"finalizers": finalizers} if finalizers else {})},
        "spec": {"deployment": "nothing-yet", "interval": "2s", "window": "8s"},
    }


def finalizers(kubectl: Kubectl, kind: str, name: str) -> list[str]:
    return kubectl.get(kind, name)["metadata"].get("finalizers") or []


def test_a_namespace_goes_once_the_operator_is_gone(kubectl: Kubectl, namespace: str, operator: Operator) -> None:
    kubectl.apply(BUILD)  # its trainer waits and runs: the build's timer serves it
    kubectl.apply(monitor("watch"))  # the monitor's daemon serves it from the start
    kubectl.apply(monitor("from-before", [FINALIZER]))  # as an earlier operator version left it

    phase(kubectl, "cancer-1", wanted=("Pending", "Running"), timeout=60)
    eventually(lambda: kubectl.get("mm", "watch").get("status", {}).get("conditions"), what="the monitor's check")
    eventually(lambda: not finalizers(kubectl, "mm", "from-before"), what="the old finalizer removed")
    assert finalizers(kubectl, "mb", "cancer-1") == []
    assert finalizers(kubectl, "mm", "watch") == []

    operator.kill()
    kubectl.run("delete", "namespace", namespace, "--wait=false")

    def gone() -> bool:
        found = kubectl.run("get", "namespace", namespace, "-o", "name", check=False)
        return found.returncode != 0 and "NotFound" in found.stderr

    eventually(gone, timeout=120, what=f"namespace {namespace} deleted without an operator")
