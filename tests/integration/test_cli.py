"""`modelops lineage`, `approve` and `reject` against the real API server, as the people who run them.

The operator does not run here: the objects and their status are written directly, so what is tested is what
the command reads, patches and prints, and what the API server (RBAC, the approval policy) lets through."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from modelops.devcluster.cluster import kubeconfig_path
from tests.support.cli import modelops
from tests.support.kube import APPROVERS, Kubectl
from tests.support.manifests import EDITOR_ROLE, EXAMPLES, MODEL_VERSION

DIGEST = "sha256:" + "5e" * 32
DATA_DIGEST = "sha256:" + "d4" * 32
POLICY_REFUSAL = "spec.approval: only approvers may approve or reject a model version"


def model_version(number: int) -> dict[str, Any]:
    body = copy.deepcopy(MODEL_VERSION)
    body["metadata"] = {"name": f"breast-cancer-v{number}", "labels": {"modelops.io/model": "breast-cancer"}}
    body["spec"]["version"] = number
    body["spec"]["artifact"] = {"uri": f"file:///tmp/modelops/artifacts/breast-cancer/v{number}", "digest": DIGEST}
    body["spec"]["lineage"] = {
        "build": f"breast-cancer-{number}",
        "datasetUri": "sklearn://breast_cancer",
        "datasetDigest": DATA_DIGEST,
        "trainerImage": "modelops:test",
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "parameters": {"n_estimators": 50},
    }
    return body


DEPLOYMENT = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "breast-cancer"},
    "spec": {"model": "breast-cancer", "replicas": 4},
}


def status(kubectl: Kubectl, kind: str, name: str, body: dict[str, Any]) -> None:
    kubectl.run("patch", kind, name, "--subresource=status", "--type=merge", "-p", json.dumps({"status": body}))


def serving(kubectl: Kubectl, namespace: str) -> None:
    """v1 serves stable, approved; v2 is the canary at 25%; v1's build still exists, v2's was pruned."""
    build = copy.deepcopy(EXAMPLES["ModelBuild"])
    kubectl.apply(build)
    status(kubectl, "mb", "breast-cancer-1", {"phase": "Succeeded", "modelVersion": "breast-cancer-v1"})
    for number in (1, 2):
        kubectl.apply(model_version(number))
    kubectl.apply(DEPLOYMENT)
    status(
        kubectl,
        "md",
        "breast-cancer",
        {
            "servingVersion": "breast-cancer-v1",
            "servingVersionNumber": 1,
            "replicas": 4,
            "readyReplicas": 4,
            "endpoint": f"http://breast-cancer.{namespace}.svc",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Serving", "message": "serving"}],
            "rollout": {"phase": "Progressing", "canaryVersion": "breast-cancer-v2", "canaryWeight": 25},
        },
    )


def test_an_approver_approves_as_themselves_and_lineage_shows_it(kubectl: Kubectl, namespace: str) -> None:
    serving(kubectl, namespace)

    done = modelops(
        "approve",
        "breast-cancer-v1",
        "-n",
        namespace,
        "--reason",
        "metrics reviewed",
        user="alice",
        groups=(APPROVERS,),
    )
    assert done.returncode == 0, done.stderr
    assert "breast-cancer-v1 approved by alice: metrics reviewed" in done.stderr
    approval = kubectl.get("mv", "breast-cancer-v1")["spec"]["approval"]
    assert approval == {"state": "Approved", "by": "alice", "reason": "metrics reviewed"}
    status(kubectl, "mv", "breast-cancer-v1", {"stage": "Approved", "approvedBy": "alice"})

    shown = modelops("lineage", "md/breast-cancer", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    for line in (
        f"ModelDeployment breast-cancer (namespace {namespace}): Ready, 4/4 replicas, rollout Progressing, canary at 25%",
        "stable ModelVersion breast-cancer-v1 (v1): stage Approved",
        "approval: Approved by alice: metrics reviewed",
        f"artifact: file:///tmp/modelops/artifacts/breast-cancer/v1 {DIGEST}",
        f"dataset: sklearn://breast_cancer {DATA_DIGEST}",
        "estimator: sklearn.ensemble.RandomForestClassifier (n_estimators=50)",
        "build: breast-cancer-1 (Succeeded)",
        "canary ModelVersion breast-cancer-v2 (v2): stage unknown",
        "approval: Pending",
        "build: breast-cancer-2 (deleted)",
    ):
        assert line in shown.stdout, f"{line!r} not in\n{shown.stdout}"

    data = json.loads(modelops("lineage", "modeldeployment/breast-cancer", "-n", namespace, "-o", "json").stdout)
    assert (data["kind"], data["name"], data["namespace"], data["canaryWeight"]) == (
        "ModelDeployment",
        "breast-cancer",
        namespace,
        25,
    )
    stable, canary = data["versions"]
    assert (stable["name"], stable["track"], stable["artifactDigest"]) == ("breast-cancer-v1", "stable", DIGEST)
    assert stable["approval"]["by"] == "alice" and stable["datasetDigest"] == DATA_DIGEST
    assert (canary["name"], canary["track"], canary["build"]["exists"]) == ("breast-cancer-v2", "canary", False)

    as_yaml = yaml.safe_load(modelops("lineage", "mv/breast-cancer-v1", "-n", namespace, "-o", "yaml").stdout)
    assert as_yaml["kind"] == "ModelVersion" and as_yaml["approval"]["state"] == "Approved"


def test_a_non_approver_is_refused_with_the_policys_message(kubectl: Kubectl, namespace: str) -> None:
    # bob may patch model versions (RBAC), so it is the approval policy that refuses him
    kubectl.apply(EDITOR_ROLE)
    kubectl.run("create", "rolebinding", "bob-edits", "--role=mv-editor", "--user=bob")
    kubectl.apply(model_version(1))

    refused = modelops("approve", "mv/breast-cancer-v1", "-n", namespace, "--reason", "lgtm", user="bob")
    assert refused.returncode == 1
    assert POLICY_REFUSAL in refused.stderr and "bob is not" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert kubectl.get("mv", "breast-cancer-v1")["spec"]["approval"] == {"state": "Pending"}

    # without RBAC at all: the API server's RBAC message, just as cleanly
    carol = modelops("approve", "breast-cancer-v1", "-n", namespace, user="carol")
    assert carol.returncode == 1
    assert 'User "carol" cannot patch resource "modelversions"' in carol.stderr
    assert "Traceback" not in carol.stderr


def test_a_rejection_needs_a_reason_and_records_who_rejected(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(model_version(1))

    bare = modelops("reject", "breast-cancer-v1", "-n", namespace, user="erin", groups=(APPROVERS,))
    assert bare.returncode != 0
    assert "a rejection needs a reason" in bare.stderr and "--reason" in bare.stderr
    assert "Traceback" not in bare.stderr
    assert kubectl.get("mv", "breast-cancer-v1")["spec"]["approval"] == {"state": "Pending"}

    done = modelops(
        "reject", "breast-cancer-v1", "-n", namespace, "--reason", "recall too low", user="erin", groups=(APPROVERS,)
    )
    assert done.returncode == 0, done.stderr
    approval = kubectl.get("mv", "breast-cancer-v1")["spec"]["approval"]
    assert approval == {"state": "Rejected", "by": "erin", "reason": "recall too low"}


def test_the_namespace_comes_from_the_kubeconfig_context(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.apply(model_version(1))
    kubectl.apply(EXAMPLES["ModelBuild"])
    status(kubectl, "mb", "breast-cancer-1", {"phase": "Succeeded", "modelVersion": "breast-cancer-v1"})
    config = yaml.safe_load(kubeconfig_path().read_text())
    config["contexts"][0]["context"]["namespace"] = namespace
    ours = tmp_path / "kubeconfig"
    ours.write_text(yaml.safe_dump(config))

    shown = modelops("lineage", "mb/breast-cancer-1", "--kubeconfig", str(ours))
    assert shown.returncode == 0, shown.stderr
    assert f"ModelBuild breast-cancer-1 (namespace {namespace}): Succeeded" in shown.stdout
    assert "ModelVersion breast-cancer-v1 (v1)" in shown.stdout


def test_what_does_not_exist_is_an_error_without_a_traceback(kubectl: Kubectl, namespace: str) -> None:
    missing = modelops("lineage", "md/nope", "-n", namespace)
    assert missing.returncode == 1
    assert f"modeldeployment 'nope' not found in namespace {namespace}" in missing.stderr

    approve = modelops("approve", "nope-v1", "-n", namespace, user="alice", groups=(APPROVERS,))
    assert approve.returncode == 1
    assert f"modelversion 'nope-v1' not found in namespace {namespace}" in approve.stderr

    bad = modelops("lineage", "mm/breast-cancer", "-n", namespace)
    assert bad.returncode == 2 and "is not a kind lineage knows" in bad.stderr
    for done in (missing, approve, bad):
        assert "Traceback" not in done.stderr
