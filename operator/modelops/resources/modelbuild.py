"""A ModelBuild's children: the trainer's configuration and its Job."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from modelops import __version__
from modelops.api.v1alpha1 import ModelBuild, ModelBuildStatus, ModelVersion
from modelops.api.v1alpha1.common import duration_seconds
from modelops.contract.training import (
    CONFIG_ANNOTATION,
    CONFIG_FILE_ENV,
    DEFAULT_CALIBRATION,
    MAX_CONFIG_BYTES,
    SALT_ENV,
    SIGNATURE_FILE,
    SIGNING_KEY_DIR,
    SIGNING_KEY_ENV,
    SIGNING_KEY_FILE,
    USER_ERROR_EXIT_CODE,
    Column,
    PersonalColumn,
    Slice,
    TrainConfig,
    TrainResult,
    unpack,
)
from modelops.evidence import signature
from modelops.evidence.provenance import PROVENANCE_FILE

from . import meta, podstate, security
from .conditions import kstatus, set_condition
from .events import Event
from .policy import Policy

TRAINER = "trainer"
#: The provenance's builder: the operator that made the training Job.
BUILDER = f"https://modelops.io/operator@{__version__}"
SHA256 = r"sha256:[a-f0-9]{64}"
CONFIG_DIR = "/etc/modelops"
CONFIG_FILE = "train.json"


def job_name(build: ModelBuild) -> str:
    return meta.child_name(build.metadata.name, "train")


def train_config(build: ModelBuild, default_image: str = "") -> TrainConfig:
    spec = build.spec
    evaluation = spec.evaluation
    card = spec.model_card
    return TrainConfig(
        build=build.metadata.name,
        namespace=build.metadata.namespace or "",
        model=spec.model,
        task=spec.task,
        dataset_uri=spec.dataset.uri,
        dataset_format=spec.dataset.format,
        target=spec.dataset.target,
        columns=[Column.model_validate(c.model_dump()) for c in spec.dataset.columns or []],
        drop=(spec.privacy and spec.privacy.drop) or [],
        hash=(spec.privacy and spec.privacy.hash) or [],
        estimator=spec.trainer.estimator.class_name if spec.trainer.estimator else None,
        function=spec.trainer.function,
        params=(spec.trainer.estimator.params if spec.trainer.estimator else spec.trainer.params) or {},
        test_size=evaluation.test_size if evaluation else 0.2,
        random_seed=evaluation.random_seed if evaluation else 42,
        metrics=list(evaluation.metrics) if evaluation and evaluation.metrics else None,
        calibration=evaluation.calibration if evaluation else DEFAULT_CALIBRATION,
        thresholds=[t.wire() for t in (evaluation and evaluation.thresholds) or []],
        slices=[Slice.model_validate(s.model_dump()) for s in (evaluation and evaluation.slices) or []],
        intended_use=card.intended_use if card else None,
        limitations=(card.limitations if card else None) or [],
        build_uid=build.metadata.uid or "",
        trainer_image=trainer_image(build, default_image),
        builder=BUILDER,
        artifacts_folder=version_folder(build),
    )


def trainer_image(build: ModelBuild, default_image: str) -> str:
    return build.spec.trainer.image or default_image


def version_folder(build: ModelBuild) -> str:
    """The build's own folder, `<artifacts.uri>/<namespace>/<model>/<build>`: builds of two namespaces, or two
    builds of one model, never write to the same place."""
    base = build.spec.artifacts.uri.rstrip("/")
    return f"{base}/{build.metadata.namespace}/{build.spec.model}/{build.metadata.name}"


def spec_problem(build: ModelBuild, policy: Policy) -> tuple[str, str] | None:
    """Why no Job may be made for this build, as (reason, message naming the field); None when one may."""
    namespace = build.metadata.namespace or ""
    if not policy.artifact_allowed(version_folder(build) + "/", namespace):
        return "ArtifactsNotAllowed", (
            f"spec.artifacts.uri: the build's folder {version_folder(build)} is outside the artifact locations of "
            f"namespace {namespace} ({policy.artifact_locations(namespace)})"
        )
    size = len(_config_json(build).encode())
    if size > MAX_CONFIG_BYTES:
        return "ConfigTooLarge", (
            f"spec: the trainer's configuration would be {size // 1000} KB, more than {MAX_CONFIG_BYTES // 1000} KB; "
            "shorten spec.trainer.estimator.params (or spec.trainer.params) and spec.dataset.columns"
        )
    return None


def _config_json(build: ModelBuild, default_image: str = "") -> str:
    return train_config(build, default_image).model_dump_json(by_alias=True, exclude_none=True)


def training_job(build: ModelBuild, default_image: str) -> dict[str, Any]:
    """The Job that trains, with a deterministic name so a restarted operator finds it instead of adding one."""
    spec = build.spec
    trainer = spec.trainer
    labels = meta.labels(model=spec.model, instance=build.metadata.name, component=TRAINER)
    env: list[dict[str, Any]] = [
        {"name": CONFIG_FILE_ENV, "value": f"{CONFIG_DIR}/{CONFIG_FILE}"},
        *meta.container_env(),
    ]
    if spec.privacy and spec.privacy.salt_secret_ref:
        ref = spec.privacy.salt_secret_ref
        env.append({"name": SALT_ENV, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    container: dict[str, Any] = {
        "name": TRAINER,
        "image": trainer_image(build, default_image),
        "command": ["modelops", "train"],
        "env": env,
        "securityContext": security.container_security_context(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        ],
        "terminationMessagePolicy": "File",
    }
    if secrets := meta.env_from_secrets(spec.dataset.credentials_secret, spec.artifacts.credentials_secret):
        container["envFrom"] = secrets
    volumes: list[dict[str, Any]] = []
    if spec.signing:
        # a file only the trainer's user reads (its group, fsGroup), never an environment variable
        ref = spec.signing.key_secret_ref
        env.append({"name": SIGNING_KEY_ENV, "value": f"{SIGNING_KEY_DIR}/{SIGNING_KEY_FILE}"})
        container["volumeMounts"].append({"name": "signing-key", "mountPath": SIGNING_KEY_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "signing-key",
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": SIGNING_KEY_FILE}],
                    "defaultMode": 0o440,
                },
            }
        )
    if trainer.resources:
        container["resources"] = trainer.resources.to_api()
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": security.pod_security_context(),
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {
                "name": "config",
                "downwardAPI": {
                    "items": [
                        {"path": CONFIG_FILE, "fieldRef": {"fieldPath": f"metadata.annotations['{CONFIG_ANNOTATION}']"}}
                    ]
                },
            },
            *volumes,
        ],
    }
    if trainer.service_account_name:
        pod_spec["serviceAccountName"] = trainer.service_account_name
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(build),
            "namespace": build.metadata.namespace,
            "labels": labels,
            "ownerReferences": [meta.owner_reference("ModelBuild", build.metadata.name, build.metadata.uid or "")],
        },
        "spec": {
            "backoffLimit": trainer.retries,
            "activeDeadlineSeconds": math.ceil(duration_seconds(trainer.active_deadline)),
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": TRAINER,
                            "operator": "In",
                            "values": [USER_ERROR_EXIT_CODE],
                        },
                    },
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {
                "metadata": {
                    "labels": {**labels, meta.RUNTIME_LABEL: TRAINER},
                    "annotations": {CONFIG_ANNOTATION: _config_json(build, default_image)},
                },
                "spec": pod_spec,
            },
        },
    }


# -- reading the Job back -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the training Job says about the build."""

    phase: str
    result: TrainResult | None = None
    reason: str = ""
    message: str = ""
    started: str | None = None
    finished: str | None = None
    #: The training Job's name, once there is one.
    job: str | None = None
    #: The image the Job runs: the lineage records it, whatever the operator's default is by the time it does.
    image: str | None = None


def _job_condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next(
        (c for c in job.get("status", {}).get("conditions") or [] if c["type"] == type_ and c["status"] == "True"),
        None,
    )


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == TRAINER:
            return status.get("state", {}).get("terminated") or {}
    return {}


def _result(pod: dict[str, Any]) -> TrainResult | None:
    message = _terminated(pod).get("message")
    if not message:
        return None
    try:
        return TrainResult.from_message(message)
    except ValueError:
        return None


def outcome(build: ModelBuild, job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> Outcome:
    """Phase, result and failure reason from the Job and its pods (newest pod first)."""
    if job is None:
        return Outcome("Pending")
    status = job.get("status", {})
    started, finished = status.get("startTime"), status.get("completionTime")
    pods = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    if _job_condition(job, "Complete"):
        result = next((r for r in map(_result, pods) if r and r.ok), None)
        if result is None:
            message = "the trainer succeeded but left no result"
            return Outcome("Failed", reason="ResultMissing", message=message, started=started, finished=finished)
        return Outcome("Succeeded", result=result, started=started, finished=finished)
    failed = _job_condition(job, "Failed")
    if failed:
        finished = failed.get("lastTransitionTime")
        for pod in pods:
            terminated = _terminated(pod)
            if terminated.get("reason") == "OOMKilled":
                limit = (
                    build.spec.trainer.resources and (build.spec.trainer.resources.limits or {}).get("memory")
                ) or "?"
                return Outcome(
                    "Failed",
                    reason="OOMKilled",
                    message=f"the trainer ran out of memory (limit {limit}): raise spec.trainer.resources.limits.memory",
                    started=started,
                    finished=finished,
                )
            result = _result(pod)
            if result and result.error:
                reason = (
                    "DataValidationFailed" if result.error.startswith("data validation failed") else "TrainingFailed"
                )
                return Outcome("Failed", reason=reason, message=result.error, started=started, finished=finished)
        if failed.get("reason") == "DeadlineExceeded":
            return Outcome(
                "Failed",
                reason="DeadlineExceeded",
                message=f"training ran longer than spec.trainer.activeDeadline ({build.spec.trainer.active_deadline})",
                started=started,
                finished=finished,
            )
        return Outcome(
            "Failed",
            reason=failed.get("reason") or "JobFailed",
            message=failed.get("message") or "the training Job failed",
            started=started,
            finished=finished,
        )
    stuck = next(filter(None, map(podstate.stuck, pods)), None)
    if stuck:  # the pod waits for something only a person can fix (a Secret, an image): say which
        return Outcome("Pending", reason="TrainerCannotStart", message=f"the trainer cannot start: {stuck}")
    if status.get("active") or started:
        return Outcome("Running", started=started)
    return Outcome("Pending")


def unprotected_message(columns: list[PersonalColumn]) -> str:
    """The warning for columns that look personal and that no privacy rule covers (names, never values)."""
    if not columns:
        return "no column looks personal, or every one is covered by spec.privacy"
    named = ", ".join(f"{c.name!r} ({c.looks_like})" for c in columns)
    return (
        f"columns {named} look personal and no privacy rule covers them: their raw values reach the model file; "
        "add them to spec.privacy.drop or spec.privacy.hash"
    )


def result_problem(build: ModelBuild, result: TrainResult) -> str | None:
    """Why a successful trainer's result cannot be recorded: the trainer runs the build author's code and image,
    so what it says it exported must lie in the build's own folder, and be a digest."""
    folder = version_folder(build) + "/"
    for field, uri in (("artifactUri", result.artifact_uri), ("baselineUri", result.baseline_uri)):
        if uri is not None and (not uri.startswith(folder) or ".." in uri.split("/") or any(c in uri for c in "?#")):
            return f"the trainer's {field} {uri} is not inside the build's folder {folder}"
    if not result.artifact_uri or not re.fullmatch(SHA256, result.artifact_digest or ""):
        return "the trainer's result names no artifact with a sha256 digest"
    if result.baseline_digest is not None and not re.fullmatch(SHA256, result.baseline_digest):
        return "the trainer's baselineDigest is not a sha256 digest"
    if result.signature is not None:
        try:
            signature.listed(unpack(result.signature))
        except ValueError as error:  # SignatureError is one
            return f"the trainer's signature is not a bundle: {error}"
    elif build.spec.signing:
        return "spec.signing names a key, but the trainer signed nothing"
    return None


# -- the version it produces ---------------------------------------------------------------------------------


def job_image(job: dict[str, Any]) -> str:
    return str(job["spec"]["template"]["spec"]["containers"][0]["image"])


def model_version(build: ModelBuild, result: TrainResult, number: int, default_image: str) -> dict[str, Any]:
    """The ModelVersion record of a successful build.

    It has no owner reference on purpose: a version is a record that must outlive the build that made it
    (deleting or pruning a build must not delete what may be serving).
    """
    spec = build.spec
    evaluation = spec.evaluation
    estimator = spec.trainer.estimator.class_name if spec.trainer.estimator else spec.trainer.function
    params = (spec.trainer.estimator.params if spec.trainer.estimator else spec.trainer.params) or {}
    validation: dict[str, Any] = {
        "autoApprove": bool(spec.approval and spec.approval.mode == "AutoWhenValidated"),
        "allowedRegression": evaluation.allowed_regression if evaluation else 0.0,
    }
    if evaluation and evaluation.thresholds:
        validation["thresholds"] = [t.to_api() for t in evaluation.thresholds]
    primary = (evaluation and evaluation.primary_metric) or ("accuracy" if spec.task == "classification" else "r2")
    validation["primaryMetric"] = primary
    body: dict[str, Any] = {
        "model": spec.model,
        "version": number,
        "task": spec.task,
        "framework": "sklearn",
        "artifact": {"uri": result.artifact_uri, "digest": result.artifact_digest},
        "metrics": result.metrics or {},
        "lineage": {
            "build": build.metadata.name,
            **({"buildUid": build.metadata.uid} if build.metadata.uid else {}),
            "datasetUri": spec.dataset.uri,
            "datasetDigest": result.dataset_digest,
            "trainerImage": trainer_image(build, default_image),
            "estimator": estimator,
            "parameters": params,
        },
        "validation": validation,
        "approval": {"state": "Pending"},
    }
    if result.slice_metrics is not None:
        body["sliceMetrics"] = result.slice_metrics
    if result.baseline_uri:
        body["baselineUri"] = result.baseline_uri
    if result.baseline_digest:
        body["baselineDigest"] = result.baseline_digest
    if result.features:
        body["features"] = [f.model_dump(by_alias=True) for f in result.features]
    if result.signature:
        folder, bundle = version_folder(build), unpack(result.signature)
        body["signature"] = {"uri": f"{folder}/{SIGNATURE_FILE}", "bundle": bundle}
        if provenance := signature.listed(bundle).get(PROVENANCE_FILE):
            body["provenance"] = {"uri": f"{folder}/{PROVENANCE_FILE}", "digest": provenance}
    if spec.model_card:
        body["modelCard"] = spec.model_card.to_api()
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": meta.version_name(spec.model, number),
            "namespace": build.metadata.namespace,
            "labels": {
                **meta.labels(model=spec.model, instance=build.metadata.name, component="model", version=number),
                meta.BUILD_LABEL: build.metadata.name,
            },
        },
        "spec": body,
    }


def is_record_of(existing: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether an existing ModelVersion is the record this build makes (same artifact, metrics, lineage, policy):
    only then is it adopted after a restart. One that merely carries the build's label is somebody else's."""

    def record(body: dict[str, Any]) -> dict[str, Any]:
        spec = ModelVersion.model_validate(body).spec
        return spec.model_dump(exclude={"approval", "version"})

    return record(existing) == record(expected)


# -- what the build's status and Events say ------------------------------------------------------------------

UNPROTECTED = "PersonalDataUnprotected"


def status(build: ModelBuild, outcome: Outcome, version: str | None) -> ModelBuildStatus:
    """The status after this look: what the outcome says is set, what it does not say stays as it was."""
    generation = build.metadata.generation
    conditions = build.status.conditions if build.status else None
    if outcome.phase == "Succeeded":
        conditions = kstatus(
            conditions, "Ready", "Succeeded", f"trained; recorded as ModelVersion {version}", generation
        )
    elif outcome.phase == "Failed" or outcome.reason:  # a pod that cannot start needs a person, like a failure
        conditions = kstatus(conditions, "Stalled", outcome.reason, outcome.message, generation)
    else:
        message = "training" if outcome.phase == "Running" else "waiting for the training Job to start"
        conditions = kstatus(conditions, "Reconciling", outcome.phase, message, generation)
    unprotected = (outcome.result.unprotected if outcome.result else None) or []
    if outcome.result:
        conditions = set_condition(
            conditions,
            UNPROTECTED,
            bool(unprotected),
            UNPROTECTED if unprotected else "NoneFound",
            unprotected_message(unprotected),
            generation,
        )
    said: dict[str, Any] = {
        "observed_generation": generation,
        "phase": outcome.phase,
        "job_name": outcome.job,
        "conditions": conditions,
        "start_time": outcome.started,
        "completion_time": outcome.finished,
    }
    if outcome.result:
        said.update(dataset_digest=outcome.result.dataset_digest, metrics=outcome.result.metrics, model_version=version)
    if outcome.phase == "Failed":
        said["failure_reason"] = outcome.reason
    return (build.status or ModelBuildStatus()).updated(**{k: v for k, v in said.items() if v is not None})


def announcements(outcome: Outcome, version: str | None) -> list[Event]:
    """What people hear of this look at the build (the controller tells it only when the phase or the reason
    changed)."""
    result = outcome.result
    if outcome.phase == "Running":
        return [("Normal", "Training", "the training Job is running")]
    if outcome.phase == "Succeeded" and result:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in (result.metrics or {}).items())
        told: list[Event] = [("Normal", "Trained", f"recorded ModelVersion {version} ({metrics})")]
        if result.unprotected:
            told.append(("Warning", UNPROTECTED, unprotected_message(result.unprotected)))
        return told
    if outcome.reason:
        return [("Warning", outcome.reason, outcome.message)]
    return []
