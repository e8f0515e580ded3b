"""How a deployment's traffic reaches its versions, and so which server children exist at each moment of a rollout.

By default the canary's weight is its share of the replicas behind the deployment's one Service. Where the cluster
serves the Gateway API and the deployment names a Gateway, an HTTPRoute weighs a stable and a canary Service
exactly (the replicas still follow the weight, for capacity). In a shadow step no caller reaches the candidate: it
runs behind a Service of its own, and the stable servers mirror to it.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    to remove; and the rollout with the weights and routing applied."""

    apply: list[dict[str, Any]]
    servers: list[str]
    remove: list[Child]
    rollout: RolloutStatus


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
    remove = _gone(deployment, rollout, routed, gateway_api, running, hpa is not None)
    return Children(apply, servers, remove, rollout.model_copy(update={**weights, "routing": routed}))


def _gone(
    deployment: ModelDeployment,
    rollout: RolloutStatus,
    routed: Routing,
    gateway_api: bool,
    running: set[str],
    scaled: bool,
) -> list[Child]:
    """The children that may exist from an earlier step or routing and are no longer wanted; one that can never
    have been written is not asked for, so a plain deployment costs no extra request. A deployment never
    reconciled before (no observed generation) has none: its first reconcile writes no canary."""
    if deployment.status is None or deployment.status.observed_generation is None:
        return []
    steps = deployment.spec.rollout.canary.steps if deployment.spec.rollout and deployment.spec.rollout.canary else []
    canary, shadow = children.deployment_name(deployment, "canary"), children.deployment_name(deployment, "shadow")
    gone: list[Child] = []
    if canary not in running:
        gone.append(Child("apps/v1", "Deployment", canary))
    if shadow not in running and (rollout.mirror or any(s.mirror for s in steps)):
        gone += [Child("apps/v1", "Deployment", shadow), Child("v1", "Service", shadow)]
    was_routed = rollout.routing == "HTTPRoute" or deployment.spec.gateway is not None
    if routed != "HTTPRoute" and was_routed:
        if gateway_api:  # else the routes went with their CRD
            gone.append(Child(*children.HTTPROUTE, deployment.metadata.name))
        gone.append(Child("v1", "Service", canary))
    if not children.feedback_taken(deployment):
        gone.append(Child("v1", "Service", children.peers_name(deployment)))
    if not scaled:
        gone.append(Child("autoscaling/v2", "HorizontalPodAutoscaler", deployment.metadata.name))
    return gone
