"""Objects shaped as the API server returns them, for tests of the operator's pure decisions: a ModelBuild, the
ModelVersion it records, its training Job and the Job's pods. Each builder takes the few fields a test is about;
everything else is a valid default (build `b1` of model `cancer` in namespace `team-a`)."""

from __future__ import annotations

from typing import Any

from modelops.api.v1alpha1 import ModelBuild, ModelVersion
from modelops.contract.training import TrainResult

NAMESPACE = "team-a"
MODEL = "cancer"
#: The operator's default trainer image.
IMAGE = "localhost/modelops:test"
DIGEST = "sha256:" + "a" * 64
ESTIMATOR = {"estimator": {"className": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0}}}
#: The default build's own folder: `<artifacts.uri>/<namespace>/<model>/<build>`.
FOLDER = f"s3://models/{NAMESPACE}/{MODEL}/b1"
STARTED = "2026-03-01T10:00:00Z"
FINISHED = "2026-03-01T10:07:00Z"


def build(name: str = "b1", **spec: Any) -> ModelBuild:
    """A ModelBuild; each keyword replaces that part of the spec whole (`trainer={...}`, `evaluation={...}`),
    written as in a manifest (camelCase)."""
    defaults: dict[str, Any] = {
        "model": MODEL,
        "task": "classification",
        "dataset": {"uri": "sklearn://breast_cancer", "target": "target"},
        "trainer": ESTIMATOR,
        "artifacts": {"uri": "s3://models/"},
    }
    return ModelBuild.model_validate(
        {
            "apiVersion": "modelops.io/v1alpha1",
            "kind": "ModelBuild",
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}", "generation": 1},
            "spec": {**defaults, **spec},
        }
    )


def result(ok: bool = True, **fields: Any) -> TrainResult:
    """The trainer's answer: by default a success that exported the default build's model inside its folder; with
    `ok=False`, only the fields given (`error=...`)."""
    if not ok:
        return TrainResult(ok=False, **fields)
    defaults: dict[str, Any] = {
        "artifact_uri": f"{FOLDER}/model.bentomodel",
        "artifact_digest": DIGEST,
        "dataset_digest": "sha256:" + "d" * 64,
        "metrics": {"accuracy": 0.95, "f1": 0.94},
        "rows": 569,
    }
    return TrainResult(ok=True, **{**defaults, **fields})


def version(
    number: int = 1,
    *,
    stage: str | None = None,
    metrics: dict[str, float] | None = None,
    validation: dict[str, Any] | None = None,
    approval: dict[str, Any] | None = None,
    **spec: Any,
) -> ModelVersion:
    """ModelVersion `cancer-v<number>`, in `stage` when given (no status otherwise); `validation` and `approval`
    as in a manifest (`{"thresholds": [...], "primaryMetric": "accuracy"}`, `{"state": "Approved", "by": "alice"}`)."""
    body: dict[str, Any] = {
        "model": MODEL,
        "version": number,
        "task": "classification",
        "artifact": {"uri": f"s3://models/{NAMESPACE}/{MODEL}/b{number}/model.bentomodel", "digest": DIGEST},
        "metrics": metrics if metrics is not None else {"accuracy": 0.95},
        **spec,
    }
    if validation is not None:
        body["validation"] = validation
    if approval is not None:
        body["approval"] = approval
    return ModelVersion.model_validate(
        {
            "apiVersion": "modelops.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": f"{MODEL}-v{number}", "namespace": NAMESPACE},
            "spec": body,
            "status": {"stage": stage} if stage else None,
        }
    )


def condition(type_: str, reason: str | None = None, message: str | None = None, *, status: str = "True") -> dict:
    """A Job condition (`Complete`, `Failed`, `FailureTarget`, ...), changed at FINISHED."""
    out = {"type": type_, "status": status, "lastProbeTime": FINISHED, "lastTransitionTime": FINISHED}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def job(*conditions: dict, **status: Any) -> dict[str, Any]:
    """The default build's training Job with these conditions and other status fields (`active=1`,
    `startTime=STARTED`); none at all is a Job the Job controller has not looked at yet."""
    if conditions:
        status["conditions"] = list(conditions)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "b1-train", "namespace": NAMESPACE, "uid": "uid-job"},
        "spec": {"template": {"spec": {"containers": [{"name": "trainer", "image": IMAGE}]}}},
        "status": status,
    }


def exited(code: int, said: TrainResult | str | None = None, reason: str | None = None) -> dict[str, Any]:
    """A container's `state` once it has terminated: its exit code, the kubelet's reason (`Completed` for 0,
    `Error` otherwise, unless given) and its termination message (a TrainResult is written as the trainer does)."""
    terminated: dict[str, Any] = {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else "Error"),
        "startedAt": STARTED,
        "finishedAt": FINISHED,
    }
    if said is not None:
        terminated["message"] = said.to_message() if isinstance(said, TrainResult) else said
    return {"terminated": terminated}


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    """A container's `state` while it waits (`ContainerCreating`, `ErrImagePull`, `CreateContainerConfigError`)."""
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


RUNNING: dict[str, Any] = {"running": {"startedAt": STARTED}}


def _phase(state: dict[str, Any]) -> str:
    if "terminated" in state:
        return "Succeeded" if state["terminated"]["exitCode"] == 0 else "Failed"
    return "Running" if "running" in state else "Pending"


def pod(state: dict[str, Any], *, name: str = "b1-train-x7k2p", created: str = STARTED, **others: dict) -> dict:
    """A pod of the training Job whose trainer container is in `state`; `others` are further containers by name
    (a sidecar), each with its own state."""
    containers = sorted([("trainer", state), *others.items()])  # the kubelet lists them by name
    return {
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "creationTimestamp": created,
            "labels": {"batch.kubernetes.io/job-name": "b1-train"},
        },
        "status": {
            "phase": _phase(state),
            "containerStatuses": [
                {"name": n, "image": IMAGE, "ready": "running" in s, "restartCount": 0, "state": s}
                for n, s in containers
            ],
        },
    }
