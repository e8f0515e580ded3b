"""ModelVersion: checks against thresholds and the champion, the stage, approval, archiving; and which
deployments serve it (`status.servedBy`, which the approval policy reads to refuse deleting a serving version)."""

from __future__ import annotations

from typing import Any

import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelVersion, ModelVersionStatus
from modelops.resources import meta
from modelops.resources import modelversion as rules
from modelops.resources.conditions import kstatus, now, set_condition

from . import kube
from .locks import object_lock

KIND = "ModelVersion"


@kopf.index(GROUP, VERSION, "modeldeployments")
def serving_index(namespace: str, name: str, status: kopf.Status, **_: Any) -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, version) → the deployment serving it and on which track."""
    return {(namespace, version): {"deployment": name, "track": track} for version, track in rules.served(status)}


@kopf.on.resume(GROUP, VERSION, "modelversions")
@kopf.on.create(GROUP, VERSION, "modelversions")
@kopf.on.update(GROUP, VERSION, "modelversions", field="spec.approval")
def version_changed(body: kopf.Body, serving_index: kopf.Index, **_: Any) -> None:
    version = ModelVersion.model_validate(dict(body))
    namespace = version.metadata.namespace or ""
    siblings = _siblings(version)
    status = version.status
    current = status.stage if status else None
    if status and status.checks is not None:
        results, champion = status.checks, status.champion  # a record: checked once, against the champion of then
    else:
        best = _champion(siblings)
        results, champion = rules.checks(version, best), best.metadata.name if best else None
    decision = rules.stage(version, results, current)
    generation = version.metadata.generation
    conditions = kstatus(
        [c.to_api() for c in (status.conditions if status else None) or []],
        "Ready",
        decision.reason,
        decision.message,
        generation,
    )
    conditions = set_condition(
        conditions, "Validated", all(r.passed for r in results), decision.reason, decision.message, generation
    )
    patch: dict[str, Any] = {
        "observedGeneration": generation,
        "stage": decision.stage,
        "checks": [r.to_api() for r in results],
        "conditions": conditions,
        "servedBy": rules.serving_refs(list(serving_index.get((namespace, version.metadata.name), []))) or None,
    }
    if champion:
        patch["champion"] = champion
    if decision.stage != current:
        patch["stageTime"] = now()
        if decision.stage == "Approved":
            approval = version.spec.approval
            patch["approvedBy"] = (approval.by if approval and approval.state == "Approved" else None) or "policy"
            patch["approvedAt"] = now()
    with object_lock(KIND, namespace, version.metadata.name):
        kube.patch_status(API_VERSION, KIND, namespace, version.metadata.name, patch)
    if decision.stage != current:
        kind = "Warning" if decision.stage == "Rejected" else "Normal"
        change = f"{current or 'Candidate'} → {decision.stage}: {decision.message}"
        kopf.event(dict(body), type=kind, reason=decision.stage, message=change)
    if decision.stage == "Approved":
        approved = version.model_copy(update={"status": ModelVersionStatus(stage="Approved")})
        for older in siblings:
            newer = rules.superseded_by(older, [approved, *siblings])
            if newer and not serving_index.get((namespace, older.metadata.name)):
                _archive(older, newer)


@kopf.on.event(GROUP, VERSION, "modeldeployments")
def serving_changed(
    type: str | None, body: kopf.Body, namespace: str, name: str, memo: kopf.Memo, serving_index: kopf.Index, **_: Any
) -> None:
    """When a deployment starts or stops serving a version, that version's `servedBy` follows; one that stops
    serving and has been superseded is archived then (not while it still serves)."""
    serving = set() if type == "DELETED" else set(rules.served(body.get("status") or {}))
    before: set[tuple[str, str]] | None = getattr(memo, "versions_served", None)
    memo.versions_served = serving
    for version_name in {v for v, _ in (serving ^ before if before is not None else serving)}:
        others = [r for r in serving_index.get((namespace, version_name), []) if r["deployment"] != name]
        own = [{"deployment": name, "track": t} for v, t in serving if v == version_name]
        _sync_served(namespace, version_name, [*others, *own])


def _sync_served(namespace: str, name: str, refs: list[dict[str, str]]) -> None:
    with object_lock(KIND, namespace, name):
        body = kube.get(API_VERSION, KIND, namespace, name)
        if body is None:
            return
        wanted = rules.serving_refs(refs)
        if ((body.get("status") or {}).get("servedBy") or []) != wanted:
            kube.patch_status(API_VERSION, KIND, namespace, name, {"servedBy": wanted or None})
    if not wanted:
        version = ModelVersion.model_validate(body)
        newer = rules.superseded_by(version, _siblings(version))
        if newer:
            _archive(version, newer)


def _siblings(version: ModelVersion) -> list[ModelVersion]:
    return [
        ModelVersion.model_validate(v)
        for v in kube.list_(API_VERSION, KIND, version.metadata.namespace or "", {meta.MODEL_LABEL: version.spec.model})
        if v["metadata"]["name"] != version.metadata.name
    ]


def _champion(siblings: list[ModelVersion]) -> ModelVersion | None:
    """The Approved version with the highest number."""
    approved = [v for v in siblings if v.status and v.status.stage == "Approved"]
    return max(approved, key=lambda v: v.spec.version, default=None)


def _archive(version: ModelVersion, newer: ModelVersion) -> None:
    """Approved → Archived: a newer version is Approved, and no deployment serves this one any more."""
    namespace = version.metadata.namespace or ""
    kube.patch_status(API_VERSION, KIND, namespace, version.metadata.name, {"stage": "Archived", "stageTime": now()})
    kopf.event(
        version.to_api(),
        type="Normal",
        reason="Archived",
        message=f"Approved → Archived: superseded by {newer.metadata.name}, and no deployment serves it",
    )
