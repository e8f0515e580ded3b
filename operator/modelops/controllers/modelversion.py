"""ModelVersion: checks against thresholds and the champion, the stage, approval, archiving; and which
deployments serve it (`status.servedBy`, which the approval policy reads to refuse deleting a serving version)."""

from __future__ import annotations

from typing import Any

import kopf

from modelops.api.v1alpha1 import (
    API_VERSION,
    GROUP,
    VERSION,
    ModelDeploymentStatus,
    ModelVersion,
    ModelVersionStatus,
)
from modelops.api.v1alpha1.modelversion import ServingRef
from modelops.resources import meta
from modelops.resources import modelversion as rules
from modelops.resources.conditions import now

from . import indexes, kube, latest, workqueue
from .config import POLICY
from .events import tell
from .locks import object_lock
from .settings import HANDLER_THREADS

KIND = "ModelVersion"


#: Each version as last watched or written: `servedBy` is kept in step without reading the version each time.
VERSIONS = latest.Latest(API_VERSION, KIND, "modelversions")


def _write_status(version: ModelVersion, status: ModelVersionStatus, *, if_unchanged: bool = False) -> None:
    VERSIONS.wrote(kube.write_status(version, version.status, status, if_unchanged=if_unchanged))


@kopf.index(GROUP, VERSION, "modeldeployments")
async def serving_index(
    namespace: str | None, name: str, status: kopf.Status, **_: Any
) -> dict[tuple[str | None, str], ServingRef]:
    """(namespace, version) → the deployment serving it and on which track."""
    serving = rules.served(ModelDeploymentStatus.model_validate(dict(status)))
    return {(namespace, version): ServingRef(deployment=name, track=track) for version, track in serving}


@kopf.on.resume(GROUP, VERSION, "modelversions")
@kopf.on.create(GROUP, VERSION, "modelversions")
@kopf.on.update(GROUP, VERSION, "modelversions", field="spec.approval")  # type: ignore[arg-type]  # Kopf passes indices by name
def version_changed(body: kopf.Body, serving_index: kopf.Index[tuple[str, str], ServingRef], **_: Any) -> None:
    version = ModelVersion.model_validate(dict(body))
    namespace = version.metadata.namespace or ""
    siblings = _siblings(version)
    served_by = rules.serving_refs(indexes.values(serving_index, (namespace, version.metadata.name)))
    verdict = rules.judged(version, _champion(siblings), served_by, now(), POLICY)
    with object_lock(KIND, namespace, version.metadata.name):
        _write_status(version, verdict.status)
    for type_, reason, message in verdict.events:
        tell(body, type_, reason, message)
    if verdict.status.stage == "Approved":
        approved = version.model_copy(update={"status": ModelVersionStatus(stage="Approved")})
        for older in siblings:
            newer = rules.superseded_by(older, [approved, *siblings])
            if newer and not serving_index.get((namespace, older.metadata.name)):
                _archive(older, newer)


@kopf.on.event(GROUP, VERSION, "modeldeployments")  # type: ignore[arg-type]  # Kopf passes indices by name
async def serving_changed(
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    serving_index: kopf.Index[tuple[str, str], ServingRef],
    **_: Any,
) -> None:
    """When a deployment starts or stops serving a version, that version's `servedBy` follows; one that stops
    serving and has been superseded is archived then (not while it still serves)."""
    status = ModelDeploymentStatus.model_validate(body.get("status") or {})
    serving = set() if type == "DELETED" else set(rules.served(status))
    before: set[tuple[str, str]] | None = getattr(memo, "versions_served", None)
    memo.versions_served = serving
    changed = serving ^ before if before is not None else serving
    for version_name in {v for v, _ in changed}:
        key = (namespace or "", version_name)
        if not SERVED_BY.busy(key) and rules.shown_as_before(
            _shown(*key), {(name, t) for v, t in changed if v == version_name}
        ):
            continue
        others = [r for r in indexes.values(serving_index, key) if r.deployment != name]
        own = [ServingRef(deployment=name, track=t) for v, t in serving if v == version_name]
        SERVED_BY.add(key, [*others, *own])


def _shown(namespace: str, name: str) -> list[ServingRef]:
    """The version's `servedBy` as last watched or written by this process, which writes it (asked only while no
    write of it is under way or waits)."""
    body = VERSIONS.get(namespace, name) or {}
    return ModelVersionStatus.model_validate(body.get("status") or {}).served_by or []


def _sync_served(namespace: str, name: str, refs: list[ServingRef]) -> None:
    wanted = rules.serving_refs(refs)
    with object_lock(KIND, namespace, name):
        version = VERSIONS.acting(namespace, name, lambda body: _served_by(body, wanted))
    if version is not None and not wanted:
        newer = rules.superseded_by(version, _siblings(version))
        if newer:
            _archive(version, newer)


def _newest(older: list[ServingRef], newer: list[ServingRef]) -> list[ServingRef]:
    """The servers of a version as the latest event found them in the index: it holds what every earlier one did."""
    return newer


#: The versions whose `servedBy` is to be written (by namespace and name), with their servers as last found.
SERVED_BY: workqueue.WorkQueue[tuple[str, str], list[ServingRef]] = workqueue.WorkQueue(
    lambda key, refs: _sync_served(*key, refs), _newest, HANDLER_THREADS, tenant=workqueue.namespace
)


def _served_by(body: dict[str, Any] | None, wanted: list[ServingRef]) -> ModelVersion | None:
    """`servedBy` written as `wanted` (nothing is written when the version already says so), only if the version is
    still as read; the version as read, None when it is gone."""
    if body is None:
        return None
    version = ModelVersion.model_validate(body)
    status = (version.status or ModelVersionStatus()).updated(served_by=wanted or None)
    _write_status(version, status, if_unchanged=True)
    return version


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
    status = version.status or ModelVersionStatus()
    _write_status(version, status.updated(stage="Archived", stage_time=now()))
    tell(
        version.to_api(),
        "Normal",
        "Archived",
        f"Approved → Archived: superseded by {newer.metadata.name}, and no deployment serves it",
    )
