"""How a deployment's traffic reaches its versions, and so which server children exist at each moment of a rollout.

By default the canary's weight is its share of the replicas behind the deployment's one Service. Where the cluster
serves the Gateway API and the deployment names a Gateway, an HTTPRoute weighs a stable and a canary Service
exactly (the replicas still follow the weight, for capacity). In a shadow step no caller reaches the candidate: it
runs behind a Service of its own, and the stable servers mirror to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.modeldeployment import RolloutStatus, Routing

from . import modeldeployment as children
from .policy import Policy


@dataclass(frozen=True)
class Child:
    """A child to remove, by kind and name in the deployment's namespace."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class Children:
    """What serves a deployment now: the manifests to apply, in order; the names of the server Deployments among
    them that stand behind the deployment's Service (their status says whether a rollout is pending); the children
    to remove; the rollout with the weights and routing applied; and the unwanted children no reconcile can have
    written, known absent without asking."""

    apply: list[dict[str, Any]]
    servers: list[str]
    remove: list[Child]
    rollout: RolloutStatus
    absent: list[Child] = field(default_factory=list)


def routing(deployment: ModelDeployment, policy: Policy, gateway_api: bool) -> tuple[Routing, str | None]:
    """How the weights reach callers, and, when the deployment names a Gateway that is not used, why not."""
    gateway = deployment.spec.gateway
    if gateway is None:
        return "Replicas", None
    if problem := children.gateway_problem(deployment, policy):
        return "Replicas", problem[1]
    if not gateway_api:
        return "Replicas", (
            f"spec.gateway: the API server does not serve {children.HTTPROUTE[1]} ({children.HTTPROUTE[0]}), so "
            "no route is written; the replicas share the traffic until the Gateway API is installed"
        )
    return "HTTPRoute", None


def plan(
    deployment: ModelDeployment,
    stable: ModelVersion | None,
    canary: ModelVersion | None,
    rollout: RolloutStatus,
    routed: Routing,
    gateway_api: bool,
    settings: children.ServerSettings,
) -> Children:
    """The children for the rollout's current step under this routing: a canary step splits the replicas (and,
    routed, the route's weights), a shadow step runs the candidate behind its own Service with the stable servers
    mirroring to it, and whatever no longer runs is removed."""
    if stable is None:  # nothing to serve yet: nothing is applied, nothing removed
        return Children([], [], [], rollout)
    spec = deployment.spec
    steps = spec.rollout.canary.steps if spec.rollout and spec.rollout.canary else []
    total = children.desired_replicas(deployment)
    stable_replicas: int | None = None if spec.autoscaling is not None else total
    apply: list[dict[str, Any]] = []
    servers: list[str] = []
    mirror: children.Mirroring | None = None
    weights: dict[str, Any] = {"canary_weight": None, "stable_weight": None, "mirror": None}
    if canary is not None and steps:
        step = min(rollout.step or 0, len(steps) - 1)  # the steps may have been edited mid-rollout
        share = steps[step].mirror
        if share is not None:
            mirror = children.mirroring(deployment, canary, share)
            apply += [
                children.service(deployment, "shadow"),
                children.server_deployment(deployment, canary, "shadow", 1, settings),
            ]
            weights = {"canary_weight": 0, "stable_weight": 100, "mirror": share}
        else:
            stable_replicas, canary_replicas = children.split(total, steps[step].weight)
            weight = (
                steps[step].weight
                if routed == "HTTPRoute"
                else round(100 * canary_replicas / (stable_replicas + canary_replicas))
            )
            apply.append(children.server_deployment(deployment, canary, "canary", canary_replicas, settings))
            servers.append(children.deployment_name(deployment, "canary"))
            weights = {"canary_weight": weight, "stable_weight": 100 - weight, "mirror": None}
        weights["step"] = step
    if routed == "HTTPRoute":
        apply += [
            children.service(deployment, "canary"),
            children.httproute(deployment, weights["canary_weight"] or 0),
        ]
    apply.append(children.service(deployment, both_tracks=routed == "Replicas"))
    if children.feedback_taken(deployment):
        apply.append(children.peers_service(deployment))
    apply.append(children.server_deployment(deployment, stable, "stable", stable_replicas, settings, mirror))
    servers.append(children.deployment_name(deployment, "stable"))
    hpa = children.autoscaler(deployment)
    if hpa:
        apply.append(hpa)
    running = {m["metadata"]["name"] for m in apply if m["kind"] == "Deployment"}
    unwanted = _unwanted(deployment, rollout, running, hpa is not None)
    weighed = rollout.model_copy(update={**weights, "routing": routed})
    if deployment.status is not None and deployment.status.observed_generation is not None:
        return Children(apply, servers, unwanted + _unrouted(deployment, rollout, routed, gateway_api), weighed)
    # Never reconciled: no earlier reconcile wrote a canary (nothing served yet), and while the spec has not changed
    # (generation 1) every one wrote what this one writes (what a routing leaves depends on discovery and policy too)
    return Children(apply, servers, [], weighed, unwanted if deployment.metadata.generation == 1 else [])


def _unwanted(deployment: ModelDeployment, rollout: RolloutStatus, running: set[str], scaled: bool) -> list[Child]:
    """The children an earlier step or spec may have left that are no longer wanted; one that can never have been
    written is not asked for, so a plain deployment costs no extra request."""
    steps = deployment.spec.rollout.canary.steps if deployment.spec.rollout and deployment.spec.rollout.canary else []
    canary, shadow = children.deployment_name(deployment, "canary"), children.deployment_name(deployment, "shadow")
    gone: list[Child] = []
    if canary not in running:
        gone.append(Child("apps/v1", "Deployment", canary))
    if shadow not in running and (rollout.mirror or any(s.mirror for s in steps)):
        gone += [Child("apps/v1", "Deployment", shadow), Child("v1", "Service", shadow)]
    if not children.feedback_taken(deployment):
        gone.append(Child("v1", "Service", children.peers_name(deployment)))
    if not scaled:
        gone.append(Child("autoscaling/v2", "HorizontalPodAutoscaler", deployment.metadata.name))
    return gone


def _unrouted(deployment: ModelDeployment, rollout: RolloutStatus, routed: Routing, gateway_api: bool) -> list[Child]:
    """What an earlier routing through an HTTPRoute left, once the traffic no longer takes it."""
    was_routed = rollout.routing == "HTTPRoute" or deployment.spec.gateway is not None
    if routed == "HTTPRoute" or not was_routed:
        return []
    canary = Child("v1", "Service", children.deployment_name(deployment, "canary"))
    if gateway_api:  # else the routes went with their CRD
        return [Child(*children.HTTPROUTE, deployment.metadata.name), canary]
    return [canary]
