"""Lineage: what a ModelDeployment serves, built from what, approved by whom — from the objects alone.

Pure functions (the only I/O is the `fetch` callable a caller passes to `collect`). A piece that is gone (a
build pruned, a version deleted) is part of the answer, marked as missing: an audit must show the gap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from modelops.api.v1alpha1 import CustomResource, ModelBuild, ModelDeployment, ModelMonitor, ModelVersion
from modelops.api.v1alpha1.modeldeployment import Decision

from .analysis import describe

Track = Literal["stable", "canary"]
Kind = type[ModelDeployment] | type[ModelVersion] | type[ModelBuild]
#: Reads one object by kind and name in the namespace of interest; None when it does not exist.
Fetch = Callable[[Kind, str], dict[str, Any] | None]
#: Lists the namespace's ModelMonitors (what they found of the versions a deployment serves).
ListMonitors = Callable[[], list[dict[str, Any]]]

KINDS: tuple[Kind, ...] = (ModelDeployment, ModelVersion, ModelBuild)


# -- the structure -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ApprovalInfo:
    """The decision on a version. `time` is when the operator saw it (Approved) or staged it (Rejected)."""

    state: str
    by: str | None = None
    reason: str | None = None
    time: datetime | None = None


@dataclasses.dataclass(frozen=True)
class BuildRef:
    """The ModelBuild a version came from; builds may be pruned while their versions live on."""

    name: str | None
    exists: bool
    phase: str | None = None


@dataclasses.dataclass(frozen=True)
class PerformanceSeen:
    """What a monitor last found a served version worth: its metric held-out, estimated and realized."""

    monitor: str
    metric: str
    holdout: float | None
    estimated: float | None
    realized: float | None
    verdict: str
    records: int | None
    labels: int | None
    checked: datetime | None


@dataclasses.dataclass(frozen=True)
class VersionLineage:
    """One ModelVersion: its record and decision, and where it came from."""

    name: str
    found: bool
    track: Track | None = None
    model: str | None = None
    version: int | None = None
    stage: str | None = None
    approval: ApprovalInfo | None = None
    artifact_uri: str | None = None
    artifact_digest: str | None = None
    framework: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    dataset_uri: str | None = None
    dataset_digest: str | None = None
    trainer_image: str | None = None
    estimator: str | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    build: BuildRef | None = None
    #: The operator's check of its signature (e.g. "signed by trusted key team-a"), and where its provenance lies.
    signature: str | None = None
    provenance_uri: str | None = None
    #: While it serves: what each monitor of its deployment found it worth.
    performance: list[PerformanceSeen] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class DeploymentLineage:
    """A ModelDeployment and every version it serves (stable, and the canary while one runs)."""

    name: str
    namespace: str | None
    model: str
    ready: bool | None
    ready_reason: str | None
    ready_message: str | None
    replicas: int | None
    ready_replicas: int | None
    rollout_phase: str | None
    canary_weight: int | None
    endpoint: str | None
    versions: list[VersionLineage]
    #: The rollout's last decision in words (action, step, who, why), and each gate it rested on.
    last_decision: str | None = None
    decision_gates: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BuildLineage:
    """A ModelBuild: what it trained on and with, and the version it produced (if it still exists)."""

    name: str
    namespace: str | None
    model: str
    phase: str | None
    failure_reason: str | None
    dataset_uri: str
    dataset_digest: str | None
    trainer_image: str | None
    estimator: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    version: VersionLineage | None


Lineage = DeploymentLineage | VersionLineage | BuildLineage


class NotFound(LookupError):
    """The object asked about does not exist (a missing piece below it is not an error)."""


# -- from objects ------------------------------------------------------------------------------------------


def served(deployment: ModelDeployment) -> list[tuple[str, Track]]:
    """The versions a deployment serves now: the stable one, and the canary while a rollout progresses."""
    status = deployment.status
    if status is None:
        return []
    out: list[tuple[str, Track]] = []
    if status.serving_version:
        out.append((status.serving_version, "stable"))
    rollout = status.rollout
    if rollout and rollout.serving_canary():
        out.append((rollout.canary_version or "", "canary"))
    return out


def approval_of(version: ModelVersion) -> ApprovalInfo:
    """spec.approval, with the operator's timestamps; a version approved by its build's policy says so."""
    status = version.status
    stage = status.stage if status else None
    approval = version.spec.approval
    if approval is not None and approval.state == "Approved":
        return ApprovalInfo(approval.state, approval.by, approval.reason, status.approved_at if status else None)
    if approval is not None and approval.state == "Rejected":
        when = status.stage_time if status and stage == "Rejected" else None
        return ApprovalInfo(approval.state, approval.by, approval.reason, when)
    if status and status.approved_by == "policy" and stage in ("Approved", "Archived"):
        return ApprovalInfo(
            "Approved", "policy", "validated, and the build's policy approves validated versions", status.approved_at
        )
    return ApprovalInfo("Pending")


def version_lineage(version: ModelVersion, build: ModelBuild | None, track: Track | None = None) -> VersionLineage:
    """The lineage of one version; `build` is the object its lineage names, or None if that is gone."""
    spec = version.spec
    record = spec.lineage
    build_name = record.build if record else None
    return VersionLineage(
        name=version.metadata.name,
        found=True,
        track=track,
        model=spec.model,
        version=spec.version,
        stage=version.status.stage if version.status else None,
        approval=approval_of(version),
        artifact_uri=spec.artifact.uri,
        artifact_digest=spec.artifact.digest,
        framework=spec.framework,
        metrics=dict(spec.metrics),
        dataset_uri=record.dataset_uri if record else None,
        dataset_digest=record.dataset_digest if record else None,
        trainer_image=record.trainer_image if record else None,
        estimator=record.estimator if record else None,
        params=dict((record.parameters if record else None) or {}),
        build=BuildRef(
            name=build_name,
            exists=build is not None,
            phase=build.status.phase if build is not None and build.status else None,
        ),
        signature=_signature_of(version),
        provenance_uri=spec.provenance.uri if spec.provenance else None,
    )


def _signature_of(version: ModelVersion) -> str | None:
    checks = (version.status.checks if version.status else None) or []
    said = next((c.message for c in checks if c.name == "signature"), None)
    return said or ("signed, not checked yet" if version.spec.signature else None)


def missing_version(name: str, track: Track | None = None, number: int | None = None) -> VersionLineage:
    """A version that is referred to but no longer exists."""
    return VersionLineage(name=name, found=False, track=track, version=number)


def performance_seen(monitors: Iterable[ModelMonitor], deployment: str, version: str) -> list[PerformanceSeen]:
    """What the monitors of a deployment last found one of its versions worth."""
    seen = []
    for monitor in monitors:
        status = monitor.status
        if monitor.spec.deployment != deployment or status is None:
            continue
        for worth in status.performance or []:
            if worth.version == version:
                seen.append(
                    PerformanceSeen(
                        monitor=monitor.metadata.name,
                        metric=worth.metric,
                        holdout=worth.holdout,
                        estimated=worth.estimated,
                        realized=worth.realized,
                        verdict=worth.verdict,
                        records=worth.estimate.records if worth.estimate else None,
                        labels=worth.labelled.records if worth.labelled else None,
                        checked=status.last_check_time,
                    )
                )
    return seen


def deployment_lineage(
    deployment: ModelDeployment,
    versions: Mapping[str, ModelVersion],
    builds: Mapping[str, ModelBuild],
    monitors: Iterable[ModelMonitor] = (),
) -> DeploymentLineage:
    """The deployment and what it serves, with what its monitors found each version worth; versions and builds
    absent from the mappings are shown as missing."""
    status = deployment.status
    ready = next((c for c in (status.conditions if status else None) or [] if c.type == "Ready"), None)
    rollout = status.rollout if status else None
    entries: list[VersionLineage] = []
    for name, track in served(deployment):
        version = versions.get(name)
        if version is None:
            number = status.serving_version_number if status and track == "stable" else None
            entries.append(missing_version(name, track, number))
            continue
        build_name = version.spec.lineage.build if version.spec.lineage else None
        worth = performance_seen(monitors, deployment.metadata.name, name)
        entries.append(
            dataclasses.replace(version_lineage(version, builds.get(build_name or ""), track), performance=worth)
        )
    return DeploymentLineage(
        name=deployment.metadata.name,
        namespace=deployment.metadata.namespace,
        model=deployment.spec.model,
        ready=None if ready is None or ready.status == "Unknown" else ready.status == "True",
        ready_reason=ready.reason if ready else None,
        ready_message=ready.message if ready else None,
        replicas=status.replicas if status else None,
        ready_replicas=status.ready_replicas if status else None,
        rollout_phase=rollout.phase if rollout else None,
        canary_weight=rollout.canary_weight if rollout and rollout.serving_canary() else None,
        endpoint=status.endpoint if status else None,
        versions=entries,
        last_decision=decision_words(rollout.last_decision) if rollout and rollout.last_decision else None,
        decision_gates=[f"{g.verdict}: {describe(g)}" for g in (rollout.last_decision.gates or [])]
        if rollout and rollout.last_decision
        else [],
    )


def decision_words(decision: Decision) -> str:
    """`Pause at step 1: …`, `Promote at step 2 by alice: …`."""
    step = f" at step {decision.step + 1}" if decision.step is not None else ""
    by = f" by {decision.by}" if decision.by else ""
    return f"{decision.action}{step}{by}: {decision.reason}"


def build_lineage(build: ModelBuild, version: ModelVersion | None) -> BuildLineage:
    """The build and the version it produced; `version` None while there is none or after it was deleted."""
    spec, status = build.spec, build.status
    trainer = spec.trainer
    produced = status.model_version if status else None
    if version is not None:
        child: VersionLineage | None = version_lineage(version, build)
    else:
        child = missing_version(produced) if produced else None
    return BuildLineage(
        name=build.metadata.name,
        namespace=build.metadata.namespace,
        model=spec.model,
        phase=status.phase if status else None,
        failure_reason=status.failure_reason if status else None,
        dataset_uri=spec.dataset.uri,
        dataset_digest=status.dataset_digest if status else None,
        trainer_image=trainer.image,
        estimator=trainer.estimator.class_name if trainer.estimator else trainer.function,
        params=dict((trainer.estimator.params if trainer.estimator else trainer.params) or {}),
        metrics=dict((status.metrics if status else None) or {}),
        version=child,
    )


# -- from a name -------------------------------------------------------------------------------------------


def aliases(kind: Kind) -> set[str]:
    """Every name kubectl accepts for the kind: short names, singular, plural, each with or without the group."""
    crd = kind.crd
    names = {*crd.short_names, crd.singular_name, crd.plural}
    return names | {f"{name}.modelops.io" for name in names - set(crd.short_names)}


def parse_ref(text: str) -> tuple[Kind, str]:
    """`md/breast-cancer` → (ModelDeployment, "breast-cancer"); the same kind names as kubectl."""
    kind_name, slash, name = text.partition("/")
    known = {alias: kind for kind in KINDS for alias in aliases(kind)}
    if not slash or not name or "/" in name:
        raise ValueError(
            f"{text!r}: expected KIND/NAME, such as md/breast-cancer, mv/breast-cancer-v2 or mb/breast-cancer-1"
        )
    kind = known.get(kind_name.lower())
    if kind is None:
        names = ", ".join(f"{k.crd.short_names[0]} ({k.crd.singular_name})" for k in KINDS)
        raise ValueError(f"{kind_name!r} is not a kind lineage knows: use {names}")
    return kind, name


def collect(kind: Kind, name: str, fetch: Fetch, monitors: ListMonitors = list) -> Lineage:
    """Read the object and what it refers to through `fetch` (and, for a deployment, its monitors), and build its
    lineage."""
    body = fetch(kind, name)
    if body is None:
        raise NotFound(f"{kind.crd.singular_name} {name!r} not found")
    if kind is ModelDeployment:
        deployment = ModelDeployment.model_validate(body)
        versions = {n: ModelVersion.model_validate(v) for n, _ in served(deployment) if (v := fetch(ModelVersion, n))}
        watching = [ModelMonitor.model_validate(m) for m in monitors()]
        return deployment_lineage(deployment, versions, _builds_of(versions.values(), fetch), watching)
    if kind is ModelVersion:
        version = ModelVersion.model_validate(body)
        builds = _builds_of([version], fetch)
        return version_lineage(version, next(iter(builds.values()), None))
    build = ModelBuild.model_validate(body)
    produced = build.status.model_version if build.status else None
    found = fetch(ModelVersion, produced) if produced else None
    return build_lineage(build, ModelVersion.model_validate(found) if found else None)


def _builds_of(versions: Iterable[ModelVersion], fetch: Fetch) -> dict[str, ModelBuild]:
    names = {v.spec.lineage.build for v in versions if v.spec.lineage and v.spec.lineage.build}
    return {n: ModelBuild.model_validate(b) for n in sorted(names) if (b := fetch(ModelBuild, n))}


# -- for machines -------------------------------------------------------------------------------------


def kind_of(lineage: Lineage) -> type[CustomResource]:
    return {DeploymentLineage: ModelDeployment, VersionLineage: ModelVersion, BuildLineage: ModelBuild}[type(lineage)]


def as_data(lineage: Lineage) -> dict[str, Any]:
    """JSON-ready: camelCase field names (as the API's), ISO times; metric and parameter keys left as they are."""
    return {"kind": kind_of(lineage).crd.kind, **_data(lineage)}


def _data(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): _data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_data(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
