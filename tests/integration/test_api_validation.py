"""The API server accepts every example and refuses bad input with a message that names the field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.kube import APPROVERS, Kubectl
from tests.support.manifests import EXAMPLES, MODEL_VERSION
from tests.support.paths import ROOT


def example(kind: str, edit: Callable[[dict], Any]) -> dict:
    document = copy.deepcopy(MODEL_VERSION if kind == "ModelVersion" else EXAMPLES[kind])
    edit(document["spec"])
    return document


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """An edit that sets (or, with value None, removes) a dotted path under spec."""

    def edit(spec: dict) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value

    return edit


# (kind, edit, what the error must say) — each names the field and the rule.
INVALID: list[tuple[str, str, Callable[[dict], None], list[str]]] = [
    ("wrong type", "ModelBuild", _set("model", 5), ["spec.model", "must be of type string"]),
    (
        "slice by values and a range",
        "ModelBuild",
        _set("evaluation.slices", [{"name": "big", "column": "mean radius", "values": ["1"], "min": 10}]),
        ["spec.evaluation.slices[0].values", "set values, or min and/or max, not both"],
    ),
    (
        "too many slices",
        "ModelBuild",
        _set("evaluation.slices", [{"name": f"s{i}", "column": "mean radius", "min": i} for i in range(6)]),
        ["spec.evaluation.slices", "must have at most 5 items"],
    ),
    (
        "signing key without a key name",
        "ModelBuild",
        _set("signing", {"keySecretRef": {"name": "model-signing"}}),
        ["spec.signing.keySecretRef.key", "Required value"],
    ),
    ("required", "ModelBuild", _set("task", None), ["spec.task", "Required value"]),
    ("enum", "ModelBuild", _set("task", "clustering"), ["spec.task", "Unsupported value", "classification"]),
    ("uri scheme", "ModelBuild", _set("dataset.uri", "ftp://host/x.csv"), ["spec.dataset.uri", "should match"]),
    ("name pattern", "ModelBuild", _set("model", "Breast_Cancer"), ["spec.model", "should match"]),
    ("fraction range", "ModelBuild", _set("evaluation.testSize", 1.5), ["spec.evaluation.testSize", "less than 1"]),
    ("retries range", "ModelBuild", _set("trainer.retries", 11), ["spec.trainer.retries", "less than or equal to 10"]),
    (
        "estimator and function",
        "ModelBuild",
        _set("trainer.function", "mymodule:train"),
        ["spec.trainer.estimator", "exactly one of estimator and function"],
    ),
    (
        "neither estimator nor function",
        "ModelBuild",
        _set("trainer.estimator", None),
        ["spec.trainer.estimator", "exactly one of estimator and function"],
    ),
    (
        "hash without salt",
        "ModelBuild",
        _set("privacy", {"hash": ["customer_id"]}),
        ["spec.privacy.saltSecretRef", "saltSecretRef is required when columns are hashed"],
    ),
    (
        "drop and hash",
        "ModelBuild",
        _set("privacy", {"drop": ["email"], "hash": ["email"], "saltSecretRef": {"name": "salt", "key": "salt"}}),
        ["spec.privacy.hash", "cannot be both dropped and hashed"],
    ),
    (
        "target dropped",
        "ModelBuild",
        _set("privacy", {"drop": ["target"]}),
        ["spec.privacy.drop", "the target column cannot be dropped"],
    ),
    (
        "column range inverted",
        "ModelBuild",
        _set("dataset.columns.0.minimum", 200),
        ["spec.dataset.columns[0].minimum", "minimum must not be greater than maximum"],
    ),
    (
        "null fraction",
        "ModelBuild",
        _set("dataset.columns.1.maxNullFraction", 2),
        ["spec.dataset.columns[1].maxNullFraction", "less than or equal to 1"],
    ),
    (
        "threshold without bound",
        "ModelBuild",
        _set("evaluation.thresholds", [{"metric": "accuracy"}]),
        ["spec.evaluation.thresholds[0].min", "set min, max or both"],
    ),
    ("duration", "ModelBuild", _set("trainer.activeDeadline", "soon"), ["spec.trainer.activeDeadline", "should match"]),
    (
        "quantity",
        "ModelBuild",
        _set("trainer.resources.requests.cpu", "lots"),
        ["spec.trainer.resources.requests.cpu", "should match"],
    ),
    ("negative replicas", "ModelDeployment", _set("replicas", -1), ["spec.replicas", "greater than or equal to 0"]),
    ("version zero", "ModelDeployment", _set("version", 0), ["spec.version", "greater than or equal to 1"]),
    (
        "autoscaling bounds",
        "ModelDeployment",
        _set("autoscaling", {"minReplicas": 5, "maxReplicas": 2}),
        ["spec.autoscaling.minReplicas", "must not be greater than maxReplicas"],
    ),
    (
        "canary without steps",
        "ModelDeployment",
        _set("rollout.canary", None),
        ["spec.rollout.canary", "canary is required when strategy is Canary"],
    ),
    (
        "canary weights",
        "ModelDeployment",
        _set("rollout.canary.steps", [{"weight": 50}, {"weight": 25}]),
        ["spec.rollout.canary.steps", "weights must strictly increase"],
    ),
    (
        "canary weight range",
        "ModelDeployment",
        _set("rollout.canary.steps", [{"weight": 100}]),
        ["spec.rollout.canary.steps[0].weight", "less than or equal to 99"],
    ),
    (
        "shadow step without a mirror share",
        "ModelDeployment",
        _set("rollout.canary.steps", [{"weight": 0}, {"weight": 50}]),
        ["spec.rollout.canary.steps[0].mirror", "mirror is set on a shadow step (weight 0), and only there"],
    ),
    (
        "mirror share on a canary step",
        "ModelDeployment",
        _set("rollout.canary.steps", [{"weight": 25, "mirror": 10}]),
        ["spec.rollout.canary.steps[0].mirror", "mirror is set on a shadow step (weight 0), and only there"],
    ),
    (
        "shadow gate without a shadow step",
        "ModelDeployment",
        _set("rollout.canary", {"steps": [{"weight": 50}], "analysis": {"minAgreement": 0.9}}),
        ["spec.rollout.canary.analysis", "minAgreement and maxMeanAbsoluteDifference judge a shadow step"],
    ),
    (
        "gateway hostname with a port",
        "ModelDeployment",
        _set("gateway", {"name": "public", "hostnames": ["models.example.com:443"]}),
        ["spec.gateway.hostnames[0]", "should match"],
    ),
    (
        "window shorter than interval",
        "ModelMonitor",
        _set("window", "5s"),
        ["spec.window", "window must not be shorter than interval"],
    ),
    (
        "prometheus without url",
        "ModelMonitor",
        _set("source", {"type": "Prometheus"}),
        ["spec.source.prometheusUrl", "prometheusUrl is required"],
    ),
    ("error rate range", "ModelMonitor", _set("errorRate.max", 1.5), ["spec.errorRate.max", "less than or equal to 1"]),
    ("monitor target", "ModelMonitor", _set("deployment", None), ["spec.deployment", "Required value"]),
    (
        "retrain template",
        "ModelMonitor",
        _set("retrain.template.task", "clustering"),
        ["spec.retrain.template.task", "Unsupported value"],
    ),
    (
        "approval without approver",
        "ModelVersion",
        _set("approval", {"state": "Approved"}),
        ["spec.approval.by", "by is required when the state is Approved or Rejected"],
    ),
    ("digest", "ModelVersion", _set("artifact.digest", "md5:123"), ["spec.artifact.digest", "should match"]),
    # What a child can never hold, refused when the object is written rather than looping in the operator.
    ("interval zero", "ModelMonitor", _set("interval", "0s"), ["spec.interval", "interval must be at least 1s"]),
    (
        "cooldown",
        "ModelMonitor",
        _set("retrain.cooldown", "1s"),
        ["spec.retrain.cooldown", "cooldown must be at least 1m"],
    ),
    (
        "deadline zero",
        "ModelBuild",
        _set("trainer.activeDeadline", "0s"),
        ["spec.trainer.activeDeadline", "activeDeadline must be at least 1s"],
    ),
    (
        "secret name",
        "ModelBuild",
        _set("dataset.credentialsSecret", "Not_A_Name"),
        ["spec.dataset.credentialsSecret", "should match"],
    ),
    (
        "service account name",
        "ModelBuild",
        _set("trainer.serviceAccountName", "two words"),
        ["spec.trainer.serviceAccountName", "should match"],
    ),
    (
        "secret key",
        "ModelBuild",
        _set("privacy", {"hash": ["id"], "saltSecretRef": {"name": "salt", "key": "a/b"}}),
        ["spec.privacy.saltSecretRef.key", "should match"],
    ),
    (
        "artifacts above their folder",
        "ModelBuild",
        _set("artifacts.uri", "s3://models/team-a/../team-b"),
        ["spec.artifacts.uri", "must not contain a '..' segment"],
    ),
    ("artifacts query", "ModelBuild", _set("artifacts.uri", "s3://models/x?versionId=1"), ["spec.artifacts.uri"]),
    ("version artifact scheme", "ModelVersion", _set("artifact.uri", "http://host/m"), ["spec.artifact.uri"]),
    ("baseline uri", "ModelVersion", _set("baselineUri", "file:///etc/../passwd"), ["spec.baselineUri", "'..'"]),
    ("monitored name", "ModelMonitor", _set("deployment", "Breast.Cancer"), ["spec.deployment", "should match"]),
    (
        "webhook key",
        "ModelMonitor",
        _set("alerts.webhook", {"urlSecretKey": "../url"}),
        ["spec.alerts.webhook.urlSecretKey", "should match"],
    ),
]


def test_every_example_is_accepted(kubectl: Kubectl) -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        kubectl.run("apply", "-f", str(path))
    listed = kubectl.run("get", "modelops", "-o", "name").stdout.split()
    assert sorted(listed) == sorted(
        f"{doc['kind'].lower()}.modelops.io/{doc['metadata']['name']}" for doc in EXAMPLES.values()
    )


@pytest.mark.parametrize(("case", "kind", "edit", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_manifest_is_refused(
    kubectl: Kubectl, case: str, kind: str, edit: Callable[[dict], None], expected: list[str]
) -> None:
    done = kubectl.apply(example(kind, edit), check=False)
    assert done.returncode != 0, f"{case}: the API server accepted it"
    for text in expected:
        assert text in done.stderr, f"{case}: {text!r} not in {done.stderr!r}"
    assert not kubectl.run("get", kind.lower(), "-o", "name").stdout.strip(), "nothing was stored"


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("ModelDeployment", "breast.cancer", "(a DNS-1035 label), because it names the Service"),
        ("ModelDeployment", "d" * 64, "at most 63 characters, because it names the Service"),
        ("ModelBuild", "b" * 70, "at most 63 characters, because it labels the training Job"),
        ("ModelMonitor", "m" * 70, "at most 63 characters, because it labels the ModelBuilds it starts"),
    ],
)
def test_a_name_no_child_could_carry_is_refused(kubectl: Kubectl, kind: str, name: str, expected: str) -> None:
    document = copy.deepcopy(EXAMPLES[kind])
    document["metadata"]["name"] = name
    done = kubectl.apply(document, check=False)
    assert done.returncode != 0, f"{kind} {name} was accepted"
    assert "metadata.name" in done.stderr and expected in done.stderr, done.stderr


def _patch(kubectl: Kubectl, kind: str, name: str, patch: dict) -> Any:
    import json

    return kubectl.run("patch", kind, name, "--type=merge", "-p", json.dumps(patch), check=False)


@pytest.mark.parametrize(
    ("field", "patch"),
    [
        ("spec.metrics", {"spec": {"metrics": {"accuracy": 0.99}}}),
        ("spec.version", {"spec": {"version": 2}}),
        ("spec.artifact", {"spec": {"artifact": {"uri": "file:///elsewhere"}}}),
        ("spec.lineage", {"spec": {"lineage": None}}),
    ],
)
def test_model_version_record_is_immutable(kubectl: Kubectl, field: str, patch: dict) -> None:
    kubectl.apply(MODEL_VERSION)
    done = _patch(kubectl, "modelversion", "breast-cancer-v1", patch)
    assert done.returncode != 0
    assert field in done.stderr and "immutable" in done.stderr, done.stderr


def test_model_version_approval_can_change(kubectl: Kubectl) -> None:
    kubectl.apply(MODEL_VERSION)
    approve = {"spec": {"approval": {"state": "Approved", "by": "alice", "reason": "beats the champion"}}}
    done = _patch(kubectl.as_user("alice", APPROVERS), "modelversion", "breast-cancer-v1", approve)
    assert done.returncode == 0, done.stderr
    assert kubectl.get("mv", "breast-cancer-v1")["spec"]["approval"]["by"] == "alice"


def test_model_build_spec_is_immutable(kubectl: Kubectl) -> None:
    kubectl.apply(EXAMPLES["ModelBuild"])
    done = _patch(kubectl, "modelbuild", "breast-cancer-1", {"spec": {"trainer": {"retries": 3}}})
    assert done.returncode != 0
    assert "spec is immutable" in done.stderr, done.stderr
