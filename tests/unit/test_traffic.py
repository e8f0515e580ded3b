"""Which children serve a deployment at each moment of a rollout, under each routing, without a cluster: replica
shares behind one Service, exact weights on an HTTPRoute, a shadow; what is removed when a step or a routing ends;
and when a named Gateway is not used, and why."""

from __future__ import annotations

from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelDeployment
from modelops.api.v1alpha1.modeldeployment import RolloutStatus, Routing
from modelops.resources import traffic
from modelops.resources.modeldeployment import ServerSettings
from modelops.resources.policy import Policy
from modelops.resources.traffic import Child
from tests.support.objects import MODEL, NAMESPACE
from tests.support.objects import version as model_version

SERVERS = ServerSettings("img")

STEPS = [{"weight": 0, "mirror": 50, "pause": "1m"}, {"weight": 10, "pause": "1m"}, {"weight": 60, "pause": "1m"}]
ROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute")


def deployment(
    gateway: dict[str, Any] | None = None, replicas: int = 4, reconciled: bool = True, generation: int = 1
) -> ModelDeployment:
    """A deployment (reconciled before, unless said otherwise: its status names the generation seen)."""
    spec: dict[str, Any] = {
        "model": MODEL,
        "replicas": replicas,
        "rollout": {"strategy": "Canary", "canary": {"steps": STEPS}},
    }
    if gateway is not None:
        spec["gateway"] = gateway
    status = {"observedGeneration": 1} if reconciled else None
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "d", "namespace": NAMESPACE, "uid": "u1", "generation": generation},
            "spec": spec,
            "status": status,
        }
    )


def planned(
    md: ModelDeployment, step: int | None, routed: Routing, **before: Any
) -> tuple[dict[tuple[str, str], dict[str, Any]], traffic.Children]:
    canary = model_version(2) if step is not None else None
    rollout = RolloutStatus(step=step, **before)
    wanted = traffic.plan(md, model_version(1), canary, rollout, routed, routed == "HTTPRoute", SERVERS)
    return {(m["kind"], m["metadata"]["name"]): m for m in wanted.apply}, wanted


def backends(route: dict[str, Any]) -> dict[str, int]:
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


def replicas(applied: dict[tuple[str, str], dict[str, Any]], name: str) -> int:
    return applied[("Deployment", name)]["spec"]["replicas"]


def test_replica_shares_put_both_tracks_behind_the_deployments_service_and_report_the_replicas_share() -> None:
    applied, wanted = planned(deployment(), 1, "Replicas")
    selector = applied[("Service", "d")]["spec"]["selector"]
    assert "modelops.io/track" not in selector, "stable and canary pods alike"
    assert (replicas(applied, "d"), replicas(applied, "d-canary")) == (3, 1)
    assert (wanted.rollout.canary_weight, wanted.rollout.stable_weight, wanted.rollout.routing) == (25, 75, "Replicas")
    assert wanted.servers == ["d-canary", "d"]
    assert not any(kind == "HTTPRoute" for kind, _ in applied)


def test_an_httproute_carries_the_steps_exact_weight_between_a_stable_and_a_canary_service() -> None:
    md = deployment({"name": "shared", "sectionName": "web", "hostnames": ["models.example.com"]})
    applied, wanted = planned(md, 1, "HTTPRoute")
    route = applied[ROUTE[1], "d"]
    assert backends(route) == {"d": 90, "d-canary": 10}
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared", "namespace": NAMESPACE,
         "sectionName": "web"}
    ]  # fmt: skip
    assert route["spec"]["hostnames"] == ["models.example.com"]
    assert route["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert applied[("Service", "d")]["spec"]["selector"]["modelops.io/track"] == "stable"
    assert applied[("Service", "d-canary")]["spec"]["selector"]["modelops.io/track"] == "canary"
    assert (wanted.rollout.canary_weight, wanted.rollout.stable_weight, wanted.rollout.routing) == (10, 90, "HTTPRoute")
    assert (replicas(applied, "d"), replicas(applied, "d-canary")) == (3, 1), "capacity still follows the weight"


def test_an_httproute_outside_a_canary_sends_everything_to_stable_and_keeps_the_canary_service() -> None:
    applied, wanted = planned(deployment({"name": "shared"}), None, "HTTPRoute")
    assert backends(applied[ROUTE[1], "d"]) == {"d": 100, "d-canary": 0}
    assert ("Service", "d-canary") in applied, "the route's backends always exist"
    assert Child("apps/v1", "Deployment", "d-canary") in wanted.remove
    assert wanted.rollout.canary_weight is None


def test_a_shadow_step_routes_nothing_to_the_candidate_under_either_routing() -> None:
    for routed in ("Replicas", "HTTPRoute"):
        applied, wanted = planned(deployment({"name": "shared"}), 0, routed)
        assert ("Deployment", "d-shadow") in applied and ("Deployment", "d-canary") not in applied
        assert wanted.rollout.mirror == 50 and wanted.rollout.canary_weight == 0
        if routed == "HTTPRoute":
            assert backends(applied[ROUTE[1], "d"]) == {"d": 100, "d-canary": 0}


def test_leaving_the_route_removes_it_and_the_canary_service_and_a_plain_deployment_asks_for_neither() -> None:
    _, left = planned(deployment(), None, "Replicas", routing="HTTPRoute")
    assert Child(*ROUTE, "d") not in left.remove, "no Gateway API served: the route went with its CRD"
    assert Child("v1", "Service", "d-canary") in left.remove
    wanted = traffic.plan(
        deployment(), model_version(1), None, RolloutStatus(routing="HTTPRoute"), "Replicas", True, SERVERS
    )
    assert Child(*ROUTE, "d") in wanted.remove
    _, plain = planned(deployment(), None, "Replicas", routing="Replicas")
    assert [c for c in plain.remove if c.kind == "HTTPRoute" or (c.name == "d-canary" and c.kind == "Service")] == []


def test_nothing_is_applied_or_removed_before_a_version_serves() -> None:
    wanted = traffic.plan(deployment(), None, None, RolloutStatus(), "Replicas", False, SERVERS)
    assert (wanted.apply, wanted.remove) == ([], [])


@pytest.mark.parametrize(
    ("gateway", "served", "policy", "routed", "why"),
    [
        (None, True, Policy(), "Replicas", None),
        ({"name": "shared"}, True, Policy(), "HTTPRoute", None),
        ({"name": "shared"}, False, Policy(), "Replicas", "does not serve HTTPRoute"),
        ({"name": "edge", "namespace": "infra"}, True, Policy(), "Replicas", "gatewayApi.allowedParents"),
        ({"name": "edge", "namespace": "infra"}, True, Policy(gateway_parents=("infra/edge",)), "HTTPRoute", None),
        ({"name": "other", "namespace": "infra"}, True, Policy(gateway_parents=("infra/edge",)), "Replicas", "infra"),
    ],
)
def test_a_named_gateway_is_used_only_where_served_and_allowed(
    gateway: dict[str, Any] | None, served: bool, policy: Policy, routed: Routing, why: str | None
) -> None:
    got, reason = traffic.routing(deployment(gateway), policy, served)
    assert got == routed
    assert (reason is None) if why is None else (why in (reason or "") and "spec.gateway" in (reason or ""))


def test_a_deployment_never_reconciled_asks_to_remove_nothing() -> None:
    _, wanted = planned(deployment(reconciled=False), None, "Replicas")
    assert wanted.remove == []
    _, wanted = planned(deployment(), None, "Replicas")
    assert Child("apps/v1", "Deployment", "d-canary") in wanted.remove
    assert wanted.absent == [], "once reconciled, what is unwanted is asked for"


def test_what_a_deployment_never_reconciled_and_never_changed_cannot_have_is_known_absent() -> None:
    """So that its second reconcile (its servers' first status) asks for none of them either."""
    _, wanted = planned(deployment(reconciled=False), None, "Replicas")
    assert set(wanted.absent) == {
        Child("apps/v1", "Deployment", "d-canary"),
        Child("apps/v1", "Deployment", "d-shadow"),
        Child("v1", "Service", "d-shadow"),
        Child("autoscaling/v2", "HorizontalPodAutoscaler", "d"),
    }
    _, changed = planned(deployment(reconciled=False, generation=2), None, "Replicas")
    assert changed.absent == [], "an earlier spec may have asked for any of them"
    _, routed = planned(deployment({"name": "shared"}, reconciled=False), None, "Replicas")
    assert not any(c.kind == "HTTPRoute" or (c.name == "d-canary" and c.kind == "Service") for c in routed.absent), (
        "whether a route was written depends on discovery and policy too"
    )
