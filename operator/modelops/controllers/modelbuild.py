"""ModelBuild: one Job per build; its outcome becomes the build's status and a new ModelVersion."""

from __future__ import annotations

import dataclasses
from typing import Any

import kopf

from modelops.api.v1alpha1 import API_VERSION, GROUP, VERSION, ModelBuild
from modelops.resources import meta
from modelops.resources import modelbuild as children

from . import kube, spawning
from .config import POLICY, RUNTIME_IMAGE
from .events import tell
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
def training_job_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    owner = next((o for o in body.metadata.get("ownerReferences", []) if o.get("kind") == KIND), None)
    if owner is None:
        return
    build = kube.get(API_VERSION, KIND, namespace or "", owner["name"])
    if build is not None and build["metadata"]["uid"] == owner["uid"]:
        settle(build)


def _trainer_waits(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in ("Pending", "Running")


@kopf.timer(GROUP, VERSION, "modelbuilds", interval=10, idle=5, when=spawning.while_alive(_trainer_waits))
def pending_tick(body: kopf.Body, **_: Any) -> None:
    """A pod that waits (for a Secret, an image) changes nothing of its Job once the Job counts it active: look at
    it again."""
    settle(dict(body))


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
        outcome = _train(build)
        if outcome.phase == "Succeeded" and outcome.result is not None:
            rejected = children.result_problem(build, outcome.result)
            if rejected:
                outcome = dataclasses.replace(outcome, phase="Failed", reason="ResultRejected", message=rejected)
        version = None
        if outcome.phase == "Succeeded":
            try:
                version = _record_version(build, fresh, outcome)
            except kube.Refused as error:  # the same record would be refused again: fail, saying why, once
                outcome = dataclasses.replace(outcome, phase="Failed", reason="VersionRefused", message=str(error))
        kube.write_status(build, build.status, children.status(build, outcome, version))
        if outcome.phase != previous or (outcome.reason and outcome.reason != _reason(build)):
            for type_, reason, message in children.announcements(outcome, version):
                tell(fresh, type_, reason, message)


def _train(build: ModelBuild) -> children.Outcome:
    """The training Job's outcome, after making the Job if there is none; a name another object holds, or a spec
    the operator or the API server refuses, fails the build at once, saying which."""
    problem = children.spec_problem(build, POLICY)
    if problem:
        return children.Outcome("Failed", reason=problem[0], message=problem[1])
    namespace, job_name = build.metadata.namespace or "", children.job_name(build)
    job = kube.get("batch/v1", "Job", namespace, job_name)
    try:
        kube.check_owned(job, "Job", job_name, build.metadata.uid or "")
        if job is None:
            job = kube.apply(children.training_job(build, RUNTIME_IMAGE))
    except kube.NotOwned as error:
        if job and job["metadata"].get("deletionTimestamp"):  # the Job of a deleted build of the same name
            raise kopf.TemporaryError(f"waiting for the previous Job {job_name} to be deleted", delay=5) from None
        return children.Outcome("Failed", reason="NameTaken", message=str(error), job=job_name)
    except kube.Refused as error:
        return children.Outcome("Failed", reason="JobRefused", message=str(error), job=job_name)
    uid = job["metadata"]["uid"]
    pods = [
        p
        for p in kube.list_("v1", "Pod", namespace, {"batch.kubernetes.io/job-name": job_name})
        if kube.controller_uid(p) == uid  # only the Job's own pods speak for it
    ]
    return dataclasses.replace(children.outcome(build, job, pods), job=job_name, image=children.job_image(job))


def _record_version(build: ModelBuild, body: dict[str, Any], outcome: children.Outcome) -> str:
    """The ModelVersion of this build: one that exists is adopted (after a restart) only if it is exactly the
    record this build makes; else one is created with the model's next version number. Another build taking
    that number first makes us try the next."""
    result, image = outcome.result, outcome.image or RUNTIME_IMAGE
    assert result is not None
    namespace = build.metadata.namespace or ""
    for existing in kube.list_(API_VERSION, "ModelVersion", namespace, {meta.BUILD_LABEL: build.metadata.name}):
        expected = children.model_version(build, result, existing["spec"]["version"], image)
        if children.is_record_of(existing, expected):
            return str(existing["metadata"]["name"])
        tell(
            body,
            "Warning",
            "VersionNotAdopted",
            f"ModelVersion {existing['metadata']['name']} carries this build's label but is not its record "
            "(another artifact or lineage): it is left alone, and a version of this build's own is recorded",
        )
    versions = kube.list_(API_VERSION, "ModelVersion", namespace, {meta.MODEL_LABEL: build.spec.model})
    number = max((v["spec"]["version"] for v in versions), default=0) + 1
    for candidate in range(number, number + 100):
        created = kube.create(children.model_version(build, result, candidate, image))
        if created is not None:
            return str(created["metadata"]["name"])
    raise kopf.TemporaryError("could not find a free version number", delay=5)


def _reason(build: ModelBuild) -> str | None:
    """The reason the build is Stalled for now, if it is (each is announced once, not at every look)."""
    conditions = (build.status.conditions if build.status else None) or []
    return next((c.reason for c in conditions if c.type == "Stalled" and c.status == "True"), None)
