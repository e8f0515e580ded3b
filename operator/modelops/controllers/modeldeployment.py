"""ModelDeployment: serve the selected version; roll a new one out by measured canary steps or rolling update;
keep the history of what served when."""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelDeployment, ModelVersion
from modelops.resources import meta, podstate
from modelops.resources import modeldeployment as children
from modelops.resources import rollout as rollouts
from modelops.resources.conditions import kstatus, now
from modelops.resources.measure import ServingTotals, serving_totals

from . import kube, metrics, pods, prometheus
from .config import POLICY, RUNTIME_IMAGE
from .locks import object_lock

KIND = "ModelDeployment"
SERVER_LABELS = {"app.kubernetes.io/component": children.SERVER, "app.kubernetes.io/managed-by": meta.MANAGED_BY}


@kopf.index(GROUP, VERSION, "modeldeployments")
def deployments_by_model(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str]:
    return {(namespace, spec.get("model", "")): name}


@kopf.on.resume(GROUP, VERSION, "modeldeployments")
@kopf.on.create(GROUP, VERSION, "modeldeployments")
@kopf.on.update(GROUP, VERSION, "modeldeployments", field="spec")
def deployment_changed(namespace: str, name: str, **_: Any) -> None:
    reconcile(namespace, name)


def _progressing(status: kopf.Status, **_: Any) -> bool:
    return (status.get("rollout") or {}).get("phase") == "Progressing"


@kopf.timer(GROUP, VERSION, "modeldeployments", interval=3, idle=0, when=_progressing)
def canary_tick(namespace: str, name: str, **_: Any) -> None:
    reconcile(namespace, name)


def _rolling_out(status: kopf.Status, **_: Any) -> bool:
    """Pods are starting or failing: their containers' state changes no Deployment status, so look again."""
    if _progressing(status):
        return False  # the canary's own timer looks more often
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    reconciling = (conditions.get("Reconciling") or {}).get("status") == "True"
    return reconciling or (conditions.get("Stalled") or {}).get("reason") == "ServerFailing"


@kopf.timer(GROUP, VERSION, "modeldeployments", interval=10, idle=5, when=_rolling_out)
def rollout_tick(namespace: str, name: str, **_: Any) -> None:
    reconcile(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels=SERVER_LABELS)
def server_changed(body: kopf.Body, **_: Any) -> None:
    owner = next(
        (o for o in body.metadata.get("ownerReferences", []) if o.get("kind") == KIND and o.get("controller")), None
    )
    if owner:
        reconcile(body.metadata.namespace, owner["name"])


@kopf.on.event(GROUP, VERSION, "modelversions")
def version_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, deployments_by_model: kopf.Index, **_: Any
) -> None:
    """A new approval (or archive, or deletion) may change what a deployment of its model should serve; its other
    changes (which deployments serve it) cannot, and wake no deployment."""
    facts = None if type == "DELETED" else children.selection_facts(ModelVersion.model_validate(dict(body)))
    if type != "DELETED" and getattr(memo, "selection_facts", None) == facts:
        return
    memo.selection_facts = facts
    for name in deployments_by_model.get((body.metadata.namespace, body.spec.get("model", "")), []):
        reconcile(body.metadata.namespace, name)


def reconcile(namespace: str, name: str) -> None:
    with object_lock(KIND, namespace, name):
        body = kube.get(API_VERSION, KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            metrics.deployment_gone(namespace, name)
            return
        _reconcile(body)


def _reconcile(body: dict[str, Any]) -> None:
    md = ModelDeployment.model_validate(body)
    namespace = md.metadata.namespace or ""
    versions = [
        ModelVersion.model_validate(v)
        for v in kube.list_(API_VERSION, "ModelVersion", namespace, {})
        if v["spec"].get("model") == md.spec.model
    ]
    selection = children.select_version(md, versions, POLICY)
    old = body.get("status") or {}
    serving = next((v for v in versions if v.metadata.name == old.get("servingVersion")), None)
    when = now()
    state = rollouts.plan(md, serving, selection.version, old.get("rollout") or {}, old.get("history") or [], when)
    if state.blocked:  # nothing is applied: the pods serve on as they are
        _write_conditions(md, old, *state.blocked)
        return
    if state.canary is not None:
        state = rollouts.decide(state, *_judge_canary(md, state), when)
    try:
        servers = _apply_children(md, state)
    except (kube.NotOwned, kube.Refused) as error:  # a retry cannot help: say so, change nothing else
        _write_conditions(md, old, "NameTaken" if isinstance(error, kube.NotOwned) else "ChildRefused", str(error))
        return
    problem = children.spec_problem(md, POLICY)
    if problem is None and any(map(children.rollout_pending, servers)):
        labels = children.server_labels(md)
        failing = podstate.failure(kube.list_("v1", "Pod", namespace, labels))
        problem = ("ServerFailing", failing) if failing else None
    status = _status(md, selection, state.stable, state.status, state.history, servers, problem)
    if _changed(old, status):
        previous = {k: v for k, v in old.items() if k != "kopf"}
        kube.patch_status(API_VERSION, KIND, namespace, md.metadata.name, kube.merge_patch(previous, status))
    for action in state.decisions:
        metrics.rollout_decision(namespace, md.metadata.name, action)
    metrics.deployment_status(namespace, md.metadata.name, md.spec.model, status)
    for type_, reason, message in state.events:
        kopf.event(body, type=type_, reason=reason, message=message)


def _apply_children(md: ModelDeployment, state: rollouts.Rollout) -> list[dict[str, Any]]:
    """Apply the server Deployments, the Service and the autoscaler the rollout wants; returns the server
    Deployments as applied, with their current status."""
    stable, canary, rollout = state.stable, state.canary, state.status
    namespace, uid = md.metadata.namespace or "", md.metadata.uid or ""
    servers: list[dict[str, Any]] = []
    if stable is None:
        return servers
    total = children.desired_replicas(md)
    if canary is not None:
        steps = md.spec.rollout.canary.steps  # type: ignore[union-attr]
        rollout["step"] = min(rollout["step"], len(steps) - 1)  # the steps may have been edited mid-rollout
        stable_replicas, canary_replicas = children.split(total, steps[rollout["step"]].weight)
        rollout["canaryWeight"] = round(100 * canary_replicas / (stable_replicas + canary_replicas))
        rollout["stableWeight"] = 100 - rollout["canaryWeight"]
        servers.append(
            kube.apply_child(children.server_deployment(md, canary, "canary", canary_replicas, RUNTIME_IMAGE))
        )
    else:
        stable_replicas = None if md.spec.autoscaling is not None else total
        kube.delete_child("apps/v1", "Deployment", namespace, children.deployment_name(md, "canary"), uid)
        rollout.pop("canaryWeight", None)
        rollout.pop("stableWeight", None)
    kube.apply_child(children.service(md))
    servers.append(kube.apply_child(children.server_deployment(md, stable, "stable", stable_replicas, RUNTIME_IMAGE)))
    hpa = children.autoscaler(md)
    if hpa:
        kube.apply_child(hpa)
    else:
        kube.delete_child("autoscaling/v2", "HorizontalPodAutoscaler", namespace, md.metadata.name, uid)
    return servers


def _write_conditions(md: ModelDeployment, old: dict[str, Any], reason: str, message: str) -> None:
    """Only the conditions change (Stalled, saying why); what serves and its history stay as they were."""
    generation = md.metadata.generation
    conditions = kstatus(old.get("conditions"), "Stalled", reason, message, generation)
    if _changed(old, {**old, "conditions": conditions}):
        kube.patch_status(API_VERSION, KIND, md.metadata.namespace or "", md.metadata.name, {"conditions": conditions})


def _judge_canary(md: ModelDeployment, state: rollouts.Rollout) -> tuple[children.Verdict, dict[str, Any]]:
    """Measure the canary (its pods, or Prometheus) and judge the current step; the measurement for the status."""
    canary, rollout = state.canary, state.status
    assert canary is not None
    labels = {**children.server_labels(md), children.TRACK_LABEL: "canary"}
    ready = [p for p in kube.list_("v1", "Pod", md.metadata.namespace or "", labels) if pods.ready(p)]
    totals = _measure(md, canary, ready)
    analysis = md.spec.rollout.canary.analysis  # type: ignore[union-attr]
    latency = children.latency_quantile(totals.latency_buckets, analysis.latency_quantile)
    measurement = {
        "requests": int(totals.requests),
        "errorRate": round(totals.errors / totals.requests, 4) if totals.requests else None,
        "latency": round(latency, 4) if latency is not None else None,
    }
    if totals.problem:  # no measurement is no verdict: the canary waits
        return children.Verdict("Wait", totals.problem), measurement
    started = dt.datetime.fromisoformat(rollout["stepStarted"].replace("Z", "+00:00"))
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    verdict = children.judge(
        md, rollout["step"], elapsed, totals.requests, totals.errors, latency, bool(ready), elapsed
    )
    return verdict, measurement


def _measure(md: ModelDeployment, canary: ModelVersion, ready_pods: list[dict[str, Any]]) -> ServingTotals:
    """The canary's totals: from Prometheus when `spec.metrics.prometheus` is set, else from its pods."""
    prometheus_source = md.spec.metrics.prometheus if md.spec.metrics else None
    if prometheus_source is None:
        port = md.spec.runtime.port if md.spec.runtime else 3000
        return serving_totals([pods.scrape(p, port) for p in ready_pods])
    if not POLICY.prometheus_allowed(prometheus_source.url):
        return ServingTotals(problem=children.PROMETHEUS_NOT_ALLOWED.format(field="spec.metrics.prometheus.url"))
    scope = prometheus.Scope(md.metadata.namespace or "", md.spec.model, str(canary.spec.version))
    return prometheus.query_totals(prometheus_source.url, scope)


def _status(
    md: ModelDeployment,
    selection: children.Selection,
    stable: ModelVersion | None,
    rollout: dict[str, Any],
    history: list[dict[str, Any]],
    servers: list[dict[str, Any]],
    problem: tuple[str, str] | None,
) -> dict[str, Any]:
    replicas = sum((s.get("status") or {}).get("replicas") or 0 for s in servers)
    ready = sum((s.get("status") or {}).get("readyReplicas") or 0 for s in servers)
    generation = md.metadata.generation
    conditions = [c.to_api() for c in (md.status.conditions if md.status else None) or []]
    if stable is None:
        conditions = kstatus(conditions, "Stalled", selection.reason, selection.message, generation)
    elif problem is not None:
        conditions = kstatus(conditions, "Stalled", *problem, generation)
    elif rollout.get("phase") == "RolledBack":
        reason = (rollout.get("lastDecision") or {}).get("reason", "")
        message = f"canary {rollout.get('canaryVersion')} was rolled back ({reason}); serving {stable.metadata.name}"
        conditions = kstatus(conditions, "Stalled", "RolledBack", message, generation)
    elif selection.version is None:
        message = f"{selection.message}; still serving {stable.metadata.name}"
        conditions = kstatus(conditions, "Stalled", selection.reason, message, generation)
    elif rollout.get("phase") == "Progressing":
        reason = (rollout.get("lastDecision") or {}).get("reason", "canary in progress")
        conditions = kstatus(conditions, "Reconciling", "CanaryProgressing", reason, generation)
    elif pending := next(filter(None, map(children.rollout_pending, servers)), None):
        conditions = kstatus(conditions, "Reconciling", "Scaling", pending, generation)
    else:
        conditions = kstatus(conditions, "Ready", "Serving", f"serving {stable.metadata.name}", generation)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "selector": children.selector_string(md),
        "endpoint": children.endpoint(md),
        "rollout": rollout,
        "history": history,
        "conditions": conditions,
        "servingVersion": stable.metadata.name if stable else None,
        "servingVersionNumber": stable.spec.version if stable else None,
    }
    return status


def _changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether writing `new` changes anything a user would see (condition timestamps aside)."""

    def comparable(status: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in status.items() if k not in ("conditions", "kopf") and v is not None}
        out["conditions"] = sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in status.get("conditions") or []
        )
        return out

    return comparable(old) != comparable(new)
