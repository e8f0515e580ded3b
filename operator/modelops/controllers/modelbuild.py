"""ModelBuild: one Job per build; its outcome becomes the build's status and a new ModelVersion."""

from __future__ import annotations

from typing import Any

import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelBuild
from modelops.resources import meta
from modelops.resources import modelbuild as children
from modelops.resources.conditions import kstatus
from modelops.runtime.contract import TrainResult

from . import kube
from .config import RUNTIME_IMAGE
from .locks import object_lock

KIND = "ModelBuild"
FINAL = ("Succeeded", "Failed")


@kopf.on.resume(GROUP, VERSION, "modelbuilds")
@kopf.on.create(GROUP, VERSION, "modelbuilds")
def build_changed(body: kopf.Body, **_: Any) -> None:
    settle(dict(body))


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={"app.kubernetes.io/component": children.TRAINER, "app.kubernetes.io/managed-by": meta.MANAGED_BY},
)
def training_job_changed(body: kopf.Body, **_: Any) -> None:
    owner = next((o for o in body.metadata.get("ownerReferences", []) if o.get("kind") == KIND), None)
    if owner is None:
        return
    build = kube.get(API_VERSION, KIND, body.metadata.namespace, owner["name"])
    if build is not None and build["metadata"]["uid"] == owner["uid"]:
        settle(build)


def settle(body: dict[str, Any]) -> None:
    build = ModelBuild.model_validate(body)
    namespace, name = build.metadata.namespace or "", build.metadata.name
    with object_lock(KIND, namespace, name):
        fresh = kube.get(API_VERSION, KIND, namespace, name)  # the status may have moved while we waited
        if fresh is None:
            return
        build = ModelBuild.model_validate(fresh)
        previous = build.status.phase if build.status else None
        if previous in FINAL:
            return
        job_name = children.job_name(build)
        job = kube.get("batch/v1", "Job", namespace, job_name)
        if job is None:
            job = kube.apply(children.training_job(build, RUNTIME_IMAGE))
        pods = kube.list_("v1", "Pod", namespace, {"batch.kubernetes.io/job-name": job_name})
        outcome = children.outcome(build, job, pods)
        version = _record_version(build, outcome.result) if outcome.phase == "Succeeded" else None
        status = _status(build, job_name, outcome, version)
        kube.patch_status(API_VERSION, KIND, namespace, name, status)
        if outcome.phase != previous:
            _announce(fresh, outcome.phase, outcome.reason, outcome.message, version, outcome.result)


def _record_version(build: ModelBuild, result: TrainResult | None) -> str:
    """The ModelVersion of this build: found by its build label if it exists (after a restart), else created
    with the model's next version number. Another build taking that number first makes us try the next."""
    assert result is not None
    namespace = build.metadata.namespace or ""
    existing = kube.list_(API_VERSION, "ModelVersion", namespace, {meta.BUILD_LABEL: build.metadata.name})
    if existing:
        return existing[0]["metadata"]["name"]
    versions = kube.list_(API_VERSION, "ModelVersion", namespace, {meta.MODEL_LABEL: build.spec.model})
    number = max((v["spec"]["version"] for v in versions), default=0) + 1
    for candidate in range(number, number + 100):
        created = kube.create(children.model_version(build, result, candidate, RUNTIME_IMAGE))
        if created is not None:
            return created["metadata"]["name"]
    raise kopf.TemporaryError("could not find a free version number", delay=5)


def _status(build: ModelBuild, job_name: str, outcome: children.Outcome, version: str | None) -> dict[str, Any]:
    generation = build.metadata.generation
    previous = build.status.conditions if build.status else None
    conditions = [c.to_api() for c in previous or []]
    if outcome.phase == "Succeeded":
        conditions = kstatus(
            conditions, "Ready", "Succeeded", f"trained; recorded as ModelVersion {version}", generation
        )
    elif outcome.phase == "Failed":
        conditions = kstatus(conditions, "Stalled", outcome.reason, outcome.message, generation)
    else:
        message = "training" if outcome.phase == "Running" else "waiting for the training Job to start"
        conditions = kstatus(conditions, "Reconciling", outcome.phase, message, generation)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": outcome.phase,
        "jobName": job_name,
        "conditions": conditions,
        "startTime": outcome.started,
        "completionTime": outcome.finished,
    }
    if outcome.result:
        status.update(datasetDigest=outcome.result.dataset_digest, metrics=outcome.result.metrics, modelVersion=version)
    if outcome.phase == "Failed":
        status["failureReason"] = outcome.reason
    return {k: v for k, v in status.items() if v is not None}


def _announce(
    body: dict[str, Any], phase: str, reason: str, message: str, version: str | None, result: TrainResult | None
) -> None:
    if phase == "Running":
        kopf.event(body, type="Normal", reason="Training", message="the training Job is running")
    elif phase == "Succeeded" and result:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in (result.metrics or {}).items())
        kopf.event(body, type="Normal", reason="Trained", message=f"recorded ModelVersion {version} ({metrics})")
    elif phase == "Failed":
        kopf.event(body, type="Warning", reason=reason, message=message)
