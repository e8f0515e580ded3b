"""ModelDeployment: serve the selected version; roll a new one out by measured canary steps or rolling update;
keep the history of what served when."""

from __future__ import annotations

import dataclasses
from typing import Any

import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelDeployment, ModelDeploymentStatus, ModelVersion
from modelops.api.v1alpha1.modeldeployment import COMMAND_ANNOTATION, COMMAND_ANNOTATIONS
from modelops.resources import modeldeployment as children
from modelops.resources import podstate, traffic
from modelops.resources import rollout as rollouts
from modelops.resources.conditions import kstatus, now

from . import canary, indexes, kube, latest, locks, metrics, owned, spawning, workqueue
from .config import POLICY, SERVERS
from .events import tell
from .settings import HANDLER_THREADS

KIND = "ModelDeployment"


#: Each deployment as last watched or written: a reconcile reads it from here, not from the API server.
DEPLOYMENTS = latest.Latest(API_VERSION, KIND, "modeldeployments")


@kopf.index(GROUP, VERSION, "modeldeployments")
async def deployments_by_model(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str | None, str], str]:
    return {(namespace, spec.get("model", "")): name}


@kopf.index(GROUP, VERSION, "modelversions")
async def versions_by_model(
    namespace: str | None, body: kopf.Body, spec: kopf.Spec, **_: Any
) -> dict[tuple[str | None, str], ModelVersion]:
    return {(namespace, spec.get("model", "")): ModelVersion.model_validate(dict(body))}


def model_versions(namespace: str, model: str) -> list[ModelVersion]:
    """The model's versions as the watch last brought them, not listed each time (an approval reaches the index
    before its event wakes the model's deployments: see `version_changed`)."""
    return indexes.values(indexes.INDEXES["versions_by_model"], (namespace, model))


#: The memo key of the generation this process last reconciled a deployment at.
RECONCILED = "reconciled_generation"


@dataclasses.dataclass(frozen=True)
class Generation:
    """A deployment's generation an event brought, to remember as reconciled in its memo once reconciled."""

    memo: kopf.Memo
    number: int | None


def _newer(a: Generation | None, b: Generation | None) -> Generation | None:
    if a is None or b is None:
        return a or b
    return b if (b.number or 0) >= (a.number or 0) else a


def _queued_reconcile(key: tuple[str, str], generation: Generation | None) -> None:
    reconcile(*key)
    if generation is not None:
        generation.memo[RECONCILED] = generation.number


#: The deployments events asked to reconcile (by namespace and name), each once however many events asked.
RECONCILES: workqueue.WorkQueue[tuple[str, str], Generation | None] = workqueue.WorkQueue(
    _queued_reconcile, _newer, HANDLER_THREADS, tenant=workqueue.namespace
)


@kopf.on.event(GROUP, VERSION, "modeldeployments")
async def deployment_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A deployment is reconciled when this process has not yet done so at its current generation: created,
    its spec changed, or first seen since the operator started. (Kopf's create, update and resume handlers would
    do the same, but store the spec they handled in the status: one more write per change.) A reconcile that fails
    is tried again by the queue."""
    if type == "DELETED":
        DEPLOYMENTS.forget(body.metadata.namespace or "", body.metadata.name or "")
    elif memo.get(RECONCILED) != body.metadata.get("generation"):
        key = (body.metadata.namespace or "", body.metadata.name or "")
        RECONCILES.add(key, Generation(memo, body.metadata.get("generation")))


def _progressing(status: kopf.Status, **_: Any) -> bool:
    return (status.get("rollout") or {}).get("phase") == "Progressing"


@kopf.timer(GROUP, VERSION, "modeldeployments", interval=3, idle=0, when=spawning.while_alive(_progressing))
def canary_tick(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """The one place a canary step is measured and judged: its window lives in the deployment's memo."""
    reconcile(namespace or "", name, memo)


def _paused(status: kopf.Status, **_: Any) -> bool:
    return (status.get("rollout") or {}).get("phase") == "Paused"


@kopf.timer(GROUP, VERSION, "modeldeployments", interval=30, idle=0, when=spawning.while_alive(_paused))
def pause_tick(namespace: str | None, name: str, **_: Any) -> None:
    """A pause nobody answers ends at `inconclusiveTimeout`."""
    reconcile(namespace or "", name)


@kopf.on.event(GROUP, VERSION, "modeldeployments", annotations={COMMAND_ANNOTATION: kopf.PRESENT})
def command_given(type: str | None, namespace: str | None, name: str, **_: Any) -> None:
    """An approver answered the rollout (`modelops rollout promote|abort|retry`)."""
    if type != "DELETED":
        reconcile(namespace or "", name)


def _rolling_out(status: kopf.Status, **_: Any) -> bool:
    """Pods are starting or failing: their containers' state changes no Deployment status, so look again; not while
    no server pod exists yet (none can fail, and the first one's creation changes the Deployment's status)."""
    if _progressing(status):
        return False  # the canary's own timer looks more often
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    reconciling = (conditions.get("Reconciling") or {}).get("status") == "True" and bool(status.get("replicas"))
    return reconciling or (conditions.get("Stalled") or {}).get("reason") == "ServerFailing"


@kopf.timer(GROUP, VERSION, "modeldeployments", interval=10, idle=5, when=spawning.while_alive(_rolling_out))
def rollout_tick(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    """Only the pods are read: the deployment is reconciled when they tell another failure than its status does
    (the servers' own progress comes by their watch)."""
    md = ModelDeployment.model_validate(dict(body))
    if _server_failure(md) != children.failure_said(md.status):
        reconcile(namespace or "", name, pods=True)


def _server_failure(md: ModelDeployment) -> str | None:
    """Why a server pod of the deployment does not run, if one does not (read from the pods)."""
    return podstate.failure(kube.list_("v1", "Pod", md.metadata.namespace or "", children.server_labels(md)))


def _owner(body: kopf.Body) -> str | None:
    """The name of the ModelDeployment that controls a child, if one does."""
    owner = kube.controller(body)
    return owner["name"] if owner and owner.get("kind") == KIND and owner.get("apiVersion") == API_VERSION else None


def _owned(body: kopf.Body, **_: Any) -> bool:
    return _owner(body) is not None


def _server_moved(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return children.server_facts(before) != children.server_facts(after)


# Every Deployment and Service a ModelDeployment controls, whatever its labels say (an edit of them is seen too).
@kopf.on.event("apps", "v1", "deployments", when=_owned)
async def server_changed(type: str | None, body: kopf.Body, namespace: str | None, **_: Any) -> None:
    """A server's rollout moved, or somebody changed or removed it: look again; its echo of the operator's own
    write, or a status change that moves nothing the deployment's status says, wakes nothing."""
    if kube.OWNED.saw(type, dict(body), _server_moved):
        RECONCILES.add((namespace or "", _owner(body) or ""), None)


@kopf.on.event("", "v1", "services", when=_owned)
async def service_changed(type: str | None, body: kopf.Body, namespace: str | None, **_: Any) -> None:
    """Somebody changed or removed a Service of a deployment: put it back as the deployment wants it."""
    if kube.OWNED.saw(type, dict(body), owned.never):
        RECONCILES.add((namespace or "", _owner(body) or ""), None)


@kopf.on.event(GROUP, VERSION, "modelversions")  # type: ignore[arg-type]  # Kopf passes indices by name
async def version_changed(
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    memo: kopf.Memo,
    deployments_by_model: kopf.Index[tuple[str, str], str],
    **_: Any,
) -> None:
    """A new approval (or archive, or deletion) may change what a deployment of its model should serve; its other
    changes (which deployments serve it) cannot, and wake no deployment."""
    facts = None if type == "DELETED" else children.selection_facts(ModelVersion.model_validate(dict(body)))
    if type != "DELETED" and getattr(memo, "selection_facts", None) == facts:
        return
    memo.selection_facts = facts
    names = indexes.values(deployments_by_model, (namespace or "", body.spec.get("model", "")))
    for name in names:
        RECONCILES.add((namespace or "", name), None)


def reconcile(namespace: str, name: str, memo: kopf.Memo | None = None, *, pods: bool = False) -> None:
    """Bring the deployment to what its spec and versions ask; with its `memo`, also measure a canary step; with
    `pods`, read its server pods for a failure while they roll out. Without either, a reconcile already waiting for
    the deployment does this one's work."""
    with locks.turn(KIND, namespace, name, shared=memo is None and not pods) as mine:
        if not mine:
            return
        DEPLOYMENTS.acting(namespace, name, lambda body: _reconcile(namespace, name, body, memo, pods))


def _reconcile(namespace: str, name: str, body: dict[str, Any] | None, memo: kopf.Memo | None, pods: bool) -> None:
    """Fetch what serves and what should, plan the rollout, act on an approver's command, measure a canary step
    and judge it, apply the children, then write the status and tell what happened."""
    if body is None or body["metadata"].get("deletionTimestamp"):
        metrics.deployment_gone(namespace, name)
        return
    md = ModelDeployment.model_validate(body)
    versions = model_versions(namespace, md.spec.model)
    selection = children.select_version(md, versions, POLICY)
    old = md.status or ModelDeploymentStatus()
    serving = next((v for v in versions if v.metadata.name == old.serving_version), None)
    when = now()
    state = rollouts.plan(md, serving, selection.version, old.rollout, old.history or [], when)
    if state.blocked:  # nothing is applied: the pods serve on as they are
        _write_conditions(md, *state.blocked)
        return
    command = rollouts.requested(md.metadata.annotations or {})
    canary_spec = md.spec.rollout.canary if md.spec.rollout else None
    steps = len(canary_spec.steps) if canary_spec else 0
    if isinstance(command, str):
        state = state.said(("Warning", "RolloutCommandInvalid", command))
    elif command is not None:
        state = rollouts.answer(state, command, selection.version, steps, when)
    progressing = state.canary is not None and canary_spec is not None and state.status.phase == "Progressing"
    if progressing and canary_spec is not None and memo is not None:
        state = rollouts.decide(state, canary.judge(md, state, when, memo), canary_spec.analysis, steps, when)
    elif state.canary is not None and canary_spec is not None and state.status.phase == "Paused":
        state = rollouts.waited(state, canary_spec.analysis, when)
    try:
        servers, state = _apply_children(md, state)
    except (kube.NotOwned, kube.Refused) as error:  # a retry cannot help: say so, change nothing else
        _write_conditions(md, "NameTaken" if isinstance(error, kube.NotOwned) else "ChildRefused", str(error))
        return
    problem = children.spec_problem(md, POLICY)
    if problem is None and any(map(children.rollout_pending, servers)) and (pods or children.failure_said(md.status)):
        # A failure the status tells is read again, to be cleared or updated; a new one is found by `rollout_tick`,
        # not by a list of the namespace's pods in every reconcile of a healthy rollout.
        failing = _server_failure(md)
        problem = ("ServerFailing", failing) if failing else None
    status = children.status(md, selection, state.stable, state.status, state.history, servers, problem)
    _write_status(md, status)
    for action in state.actions:
        metrics.rollout_decision(namespace, md.metadata.name, action)
    metrics.deployment_status(namespace, md.metadata.name, md.spec.model, status)
    for type_, reason, message in state.events:
        tell(body, type_, reason, message)
    if command is not None:  # acted on (or refused, saying why): asked once, done once
        DEPLOYMENTS.wrote(kube.remove_annotations(md, COMMAND_ANNOTATIONS))


def _apply_children(md: ModelDeployment, state: rollouts.Rollout) -> tuple[list[dict[str, Any]], rollouts.Rollout]:
    """Apply the children the rollout's step wants and remove those it no longer does; returns the server
    Deployments behind the deployment's Service as applied, with their current status, and the rollout with the
    weights and routing that were applied."""
    routes = md.spec.gateway is not None or state.status.routing == "HTTPRoute"  # else no route is asked about
    try:
        return _apply_routed(md, state, routes and kube.served_lately(*children.HTTPROUTE))
    except kube.NotServed:  # the Gateway API went away since it was discovered: the replicas share the traffic
        return _apply_routed(md, state, False)


def _apply_routed(
    md: ModelDeployment, state: rollouts.Rollout, gateway_api: bool
) -> tuple[list[dict[str, Any]], rollouts.Rollout]:
    routed, unused = traffic.routing(md, POLICY, gateway_api)
    wanted = traffic.plan(md, state.stable, state.canary, state.status, routed, gateway_api, SERVERS)
    applied = {(m["kind"], m["metadata"]["name"]): kube.apply_child(m) for m in wanted.apply}
    namespace, uid = md.metadata.namespace or "", md.metadata.uid or ""
    for child in wanted.remove:
        kube.delete_child(child.api_version, child.kind, namespace, child.name, uid)
    for child in wanted.absent:  # so that a later reconcile does not ask for them either
        kube.OWNED.gone((child.kind, namespace, child.name))
    servers = [applied[("Deployment", name)] for name in wanted.servers]
    if unused and state.status.routing != routed:  # said once, when the routing changes
        return servers, state.said(("Warning", "GatewayNotUsed", unused), status=wanted.rollout)
    return servers, dataclasses.replace(state, status=wanted.rollout)


def _write_conditions(md: ModelDeployment, reason: str, message: str) -> None:
    """Only the conditions change (Stalled, saying why); what serves and its history stay as they were."""
    old = md.status or ModelDeploymentStatus()
    conditions = kstatus(old.conditions, "Stalled", reason, message, md.metadata.generation)
    _write_status(md, old.updated(conditions=conditions))


def _write_status(md: ModelDeployment, status: ModelDeploymentStatus) -> None:
    """Only if the deployment is still as it was read: a status is never computed from a body older than the one it
    replaces."""
    DEPLOYMENTS.wrote(kube.write_status(md, md.status, status, if_unchanged=True))
