"""ModelVersion: checks against thresholds and the champion, the stage, approval, archiving."""

from __future__ import annotations

from typing import Any

import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelVersion
from modelops.resources import meta
from modelops.resources import modelversion as rules
from modelops.resources.conditions import kstatus, now, set_condition

from . import kube

KIND = "ModelVersion"


@kopf.on.resume(GROUP, VERSION, "modelversions")
@kopf.on.create(GROUP, VERSION, "modelversions")
@kopf.on.update(GROUP, VERSION, "modelversions", field="spec.approval")
def version_changed(body: kopf.Body, **_: Any) -> None:
    version = ModelVersion.model_validate(dict(body))
    siblings = [
        ModelVersion.model_validate(v)
        for v in kube.list_(API_VERSION, KIND, version.metadata.namespace or "", {meta.MODEL_LABEL: version.spec.model})
        if v["metadata"]["name"] != version.metadata.name
    ]
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
    }
    if champion:
        patch["champion"] = champion
    if decision.stage != current:
        patch["stageTime"] = now()
        if decision.stage == "Approved":
            approval = version.spec.approval
            patch["approvedBy"] = (approval.by if approval and approval.state == "Approved" else None) or "policy"
            patch["approvedAt"] = now()
    kube.patch_status(API_VERSION, KIND, version.metadata.namespace or "", version.metadata.name, patch)
    if decision.stage != current:
        kind = "Warning" if decision.stage == "Rejected" else "Normal"
        change = f"{current or 'Candidate'} → {decision.stage}: {decision.message}"
        kopf.event(dict(body), type=kind, reason=decision.stage, message=change)
    if decision.stage == "Approved":
        _archive_older(version, siblings)


def _champion(siblings: list[ModelVersion]) -> ModelVersion | None:
    """The Approved version with the highest number."""
    approved = [v for v in siblings if v.status and v.status.stage == "Approved"]
    return max(approved, key=lambda v: v.spec.version, default=None)


def _archive_older(version: ModelVersion, siblings: list[ModelVersion]) -> None:
    """A newly approved version supersedes the Approved ones before it."""
    for older in siblings:
        if older.status and older.status.stage == "Approved" and older.spec.version < version.spec.version:
            kube.patch_status(
                API_VERSION,
                KIND,
                older.metadata.namespace or "",
                older.metadata.name,
                {"stage": "Archived", "stageTime": now()},
            )
            kopf.event(
                older.to_api(),
                type="Normal",
                reason="Archived",
                message=f"Approved → Archived: superseded by {version.metadata.name}",
            )
