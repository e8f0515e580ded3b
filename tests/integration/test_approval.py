"""Only the approvers group may approve: the chart's ValidatingAdmissionPolicy, enforced by the API server."""

from __future__ import annotations

import json

from tests.support.kube import APPROVERS, Kubectl
from tests.support.manifests import EDITOR_ROLE, MODEL_VERSION
from tests.support.waiting import eventually

APPROVE = {"spec": {"approval": {"state": "Approved", "by": "alice", "reason": "reviewed the metrics"}}}


def test_an_approver_approves_and_anyone_else_is_refused(kubectl: Kubectl) -> None:
    # bob may edit model versions (RBAC), but is not an approver: the policy alone must stop him.
    kubectl.apply(EDITOR_ROLE)
    kubectl.run("create", "rolebinding", "bob-edits", "--role=mv-editor", "--user=bob")
    kubectl.apply(MODEL_VERSION)

    refused = kubectl.as_user("bob").run(
        "patch", "mv", "breast-cancer-v1", "--type=merge", "-p", json.dumps(APPROVE), check=False
    )
    assert refused.returncode != 0
    assert "spec.approval: only approvers may approve or reject a model version" in refused.stderr
    assert "bob is not one" in refused.stderr

    sneaky = dict(MODEL_VERSION, metadata={"name": "pre-approved"})
    sneaky = json.loads(json.dumps(sneaky))
    sneaky["spec"]["approval"] = APPROVE["spec"]["approval"]
    assert kubectl.as_user("bob").apply(sneaky, check=False).returncode != 0, "created already approved"

    kubectl.as_user("alice", APPROVERS).run(
        "patch", "mv", "breast-cancer-v1", "--type=merge", "-p", json.dumps(APPROVE)
    )
    assert kubectl.get("mv", "breast-cancer-v1")["spec"]["approval"]["by"] == "alice"

    other = kubectl.as_user("bob").run("label", "mv", "breast-cancer-v1", "team=search", check=False)
    assert other.returncode == 0, "changes other than the approval are not the policy's business"


def test_approval_moves_the_stage_and_archives_the_previous_champion(kubectl: Kubectl, operator) -> None:
    approver = kubectl.as_user("alice", APPROVERS)
    first = json.loads(json.dumps(MODEL_VERSION))
    second = json.loads(json.dumps(MODEL_VERSION))
    second["metadata"]["name"] = "breast-cancer-v2"
    second["spec"]["version"] = 2
    second["spec"]["metrics"] = {"accuracy": 0.96, "rocAuc": 0.99}
    for version in (first, second):
        version["metadata"]["labels"] = {"modelops.io/model": "breast-cancer"}
        version["spec"]["validation"] = {"primaryMetric": "accuracy", "allowedRegression": 0.0}
        kubectl.apply(version)

    stage = lambda name: kubectl.get("mv", name).get("status", {}).get("stage")  # noqa: E731
    assert eventually(lambda: stage("breast-cancer-v1") == "Validated", what="v1 Validated")
    approver.run("patch", "mv", "breast-cancer-v1", "--type=merge", "-p", json.dumps(APPROVE))
    assert eventually(lambda: stage("breast-cancer-v1") == "Approved", what="v1 Approved")
    v1 = kubectl.get("mv", "breast-cancer-v1")["status"]
    assert v1["approvedBy"] == "alice"

    approver.run("patch", "mv", "breast-cancer-v2", "--type=merge", "-p", json.dumps(APPROVE))
    assert eventually(lambda: stage("breast-cancer-v2") == "Approved", what="v2 Approved")
    assert eventually(lambda: stage("breast-cancer-v1") == "Archived", what="v1 Archived")
    reasons = [
        e["reason"] for e in kubectl.get("events", "--field-selector", "involvedObject.name=breast-cancer-v1")["items"]
    ]
    assert {"Validated", "Approved", "Archived"} <= set(reasons)
