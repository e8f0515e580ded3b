"""Exact canary weights on a Gateway API HTTPRoute, on the real control plane with real servers: where the API
server serves HTTPRoute and the deployment names a Gateway, the route weighs a stable and a canary Service by the
step's weight; without the Gateway API, or with another team's Gateway the administrator does not allow, the
replicas share the traffic and the deployment says why.

No gateway implementation runs here: the route is the object the API server validates and a gateway would act on,
and the two Services it weighs are asked directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from modelops.devcluster.toolchain import Toolchain, gateway_api_crds
from modelops.devcluster.traffic import service_url
from tests.support.deployments import approve, condition, deployment, status, version
from tests.support.kube import MALLORY, Kubectl, tenant
from tests.support.operator import Operator
from tests.support.waiting import eventually

#: Another team's namespace and the one Gateway of it the administrator lets routes attach to.
INFRA, EDGE = "infra", "edge"
ROUTE = "httproutes.gateway.networking.k8s.io"


def crd_files() -> list[str]:
    return [arg for path in gateway_api_crds() for arg in ("-f", str(path))]


@pytest.fixture(scope="module")
def gateway_api(cluster: Toolchain) -> Iterator[None]:
    """The Gateway API's HTTPRoute and Gateway CRDs, Established; removed again after the module."""
    admin = Kubectl(cluster)
    admin.run("apply", "--server-side", *crd_files())
    admin.run("wait", "--for=condition=Established", f"crd/{ROUTE}", "--timeout=60s")
    yield
    admin.run("delete", "--ignore-not-found", "--wait=false", *crd_files())


@pytest.fixture
def no_gateway_api(cluster: Toolchain) -> None:
    admin = Kubectl(cluster)
    admin.run("delete", "--ignore-not-found", "--wait=true", *crd_files())


@pytest.fixture
def gateway_parents() -> str:
    """What the administrator allows (the chart's gatewayApi.allowedParents), asked for before `operator`."""
    return f"{INFRA}/{EDGE}"


def backends(kubectl: Kubectl) -> dict[str, int]:
    route = kubectl.get(ROUTE, "cancer")
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


def versions_behind(service: dict[str, Any], records: list[dict[str, Any]], asks: int = 12) -> set[str]:
    """Which versions answer the Service's callers (one connection per request, so kube-proxy spreads them)."""
    url = service_url(service)
    answers = [httpx.post(f"{url}/predict", json={"records": records}, timeout=10) for _ in range(asks)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    return {a.json()["version"] for a in answers}


def events(kubectl: Kubectl, reason: str) -> list[str]:
    listed = kubectl.get("events", "--field-selector", f"reason={reason}")["items"]
    return [e["message"] for e in listed]


def test_without_the_gateway_api_a_named_gateway_leaves_replica_shares_and_says_so(
    no_gateway_api: None, kubectl: Kubectl, operator: Operator, forest: dict
) -> None:
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=1, gateway={"name": "shared"}))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    assert status(kubectl)["rollout"]["routing"] == "Replicas"
    said = eventually(lambda: events(kubectl, "GatewayNotUsed"), what="the Event")
    assert len(said) == 1 and "spec.gateway" in said[0] and "does not serve HTTPRoute" in said[0], said


def test_a_canary_behind_a_gateway_gets_the_steps_exact_weight_on_the_route_and_only_its_own_service(
    gateway_api: None, kubectl: Kubectl, operator: Operator, forest: dict
) -> None:
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    rollout = {"strategy": "Canary", "canary": {"steps": [{"weight": 10, "pause": "10m"}]}}
    gateway = {"name": "shared", "hostnames": ["cancer.models.test"]}
    kubectl.apply(deployment(replicas=2, rollout=rollout, gateway=gateway))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")
    assert backends(kubectl) == {"cancer": 100, "cancer-canary": 0}
    route = kubectl.get(ROUTE, "cancer")
    assert route["spec"]["parentRefs"][0]["name"] == "shared" and route["spec"]["hostnames"] == ["cancer.models.test"]
    assert status(kubectl)["rollout"]["routing"] == "HTTPRoute"

    kubectl.apply(version(2, forest))
    approve(kubectl, 2)
    eventually(lambda: backends(kubectl) == {"cancer": 90, "cancer-canary": 10}, timeout=60, what="the step's weights")
    # The replicas split 1 and 1 (a 50% share without the route): the route's weight is the step's, exactly.
    assert (status(kubectl)["rollout"]["canaryWeight"], status(kubectl)["rollout"]["stableWeight"]) == (10, 90)
    eventually(
        lambda: kubectl.get("deployment", "cancer-canary").get("status", {}).get("readyReplicas") == 1,
        timeout=120,
        what="the canary ready",
    )
    records = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(3).to_dict(orient="records")
    assert versions_behind(kubectl.get("service", "cancer"), records) == {"1"}
    assert versions_behind(kubectl.get("service", "cancer-canary"), records) == {"2"}

    # Leaving the gateway: the route and the canary's Service go, and the replicas share the traffic again.
    kubectl.run("patch", "md", "cancer", "--type=json", "-p", json.dumps([{"op": "remove", "path": "/spec/gateway"}]))
    eventually(lambda: kubectl.run("get", ROUTE, "cancer", check=False).returncode != 0, timeout=60, what="no route")
    eventually(lambda: kubectl.run("get", "service", "cancer-canary", check=False).returncode != 0, what="no Service")
    assert "modelops.io/track" not in kubectl.get("service", "cancer")["spec"]["selector"]
    eventually(lambda: status(kubectl)["rollout"].get("canaryWeight") == 50, timeout=60, what="the replicas' share")
    assert status(kubectl)["rollout"]["routing"] == "Replicas"
    assert versions_behind(kubectl.get("service", "cancer"), records, asks=30) == {"1", "2"}


def test_a_tenant_attaches_a_route_only_to_her_own_namespaces_gateway_or_one_the_administrator_allows(
    gateway_api: None, gateway_parents: str, kubectl: Kubectl, operator: Operator, forest: dict
) -> None:
    mallory = tenant(kubectl)
    refused = kubectl.run("auth", "can-i", "create", ROUTE, f"--as={MALLORY}", check=False)
    assert refused.stdout.strip() == "no", "she cannot write a route herself: the operator must not for her"
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    mallory.apply(deployment(replicas=1, gateway={"name": "public", "namespace": INFRA}))
    stalled = eventually(
        lambda: (found := condition(kubectl, "Stalled")).get("reason") == "GatewayNotAllowed" and found,
        timeout=120,
        what="GatewayNotAllowed",
    )
    assert stalled["message"].startswith("spec.gateway.namespace:") and f"{INFRA}/public" in stalled["message"]
    assert kubectl.run("get", ROUTE, "cancer", check=False).returncode != 0, "no route to another team's Gateway"
    assert status(kubectl)["rollout"]["routing"] == "Replicas"

    mallory.run(
        "patch",
        "md",
        "cancer",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"gateway": {"name": EDGE, "namespace": INFRA}}}),
    )
    eventually(lambda: kubectl.run("get", ROUTE, "cancer", check=False).returncode == 0, timeout=60, what="a route")
    assert kubectl.get(ROUTE, "cancer")["spec"]["parentRefs"][0]["namespace"] == INFRA
    assert status(kubectl)["rollout"]["routing"] == "HTTPRoute"
    assert condition(kubectl, "Stalled").get("status") != "True"


def test_the_gateway_api_removed_under_a_running_operator_leaves_replica_shares(
    gateway_api: None, kubectl: Kubectl, operator: Operator, forest: dict, cluster: Toolchain
) -> None:
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=1, gateway={"name": "shared"}))
    eventually(lambda: status(kubectl).get("rollout", {}).get("routing") == "HTTPRoute", timeout=120, what="routed")

    Kubectl(cluster).run("delete", "--wait=true", *crd_files())  # the operator discovered it a moment ago
    kubectl.run("patch", "md", "cancer", "--type=merge", "-p", json.dumps({"spec": {"replicas": 2}}))
    eventually(lambda: status(kubectl)["rollout"].get("routing") == "Replicas", timeout=60, what="replica shares")
    eventually(lambda: kubectl.run("get", "service", "cancer-canary", check=False).returncode != 0, what="no Service")
    assert "modelops.io/track" not in kubectl.get("service", "cancer")["spec"]["selector"]
    said = eventually(lambda: events(kubectl, "GatewayNotUsed"), what="the Event")
    assert "does not serve HTTPRoute" in said[0]
    assert condition(kubectl, "Stalled").get("status") != "True"
