"""Lineage from objects alone: what a deployment serves, from what data and trainer, approved by whom; gaps shown."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from modelops import lineage_tree
from modelops.api.v1alpha1 import ModelBuild, ModelDeployment, ModelVersion
from modelops.resources import lineage

DIGEST = "sha256:" + "3f" * 32
DATA_DIGEST = "sha256:" + "9c" * 32
APPROVED_AT = "2025-03-04T10:15:00Z"

BUILD: dict[str, Any] = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelBuild",
    "metadata": {"name": "breast-cancer-1", "namespace": "ml"},
    "spec": {
        "model": "breast-cancer",
        "task": "classification",
        "dataset": {"uri": "sklearn://breast_cancer", "target": "target"},
        "trainer": {
            "image": "ghcr.io/acme/modelops:0.1.0",
            "estimator": {
                "className": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 50, "max_depth": 6},
            },
        },
        "artifacts": {"uri": "file:///tmp/modelops/artifacts"},
    },
    "status": {
        "phase": "Succeeded",
        "datasetDigest": DATA_DIGEST,
        "metrics": {"accuracy": 0.9561, "rocAuc": 0.9934},
        "modelVersion": "breast-cancer-v1",
    },
}


def version_body(number: int, *, stage: str = "Approved", approval: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ModelVersion as the operator records it (see resources/modelbuild.model_version)."""
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"breast-cancer-v{number}", "namespace": "ml"},
        "spec": {
            "model": "breast-cancer",
            "version": number,
            "task": "classification",
            "framework": "sklearn",
            "artifact": {"uri": f"file:///tmp/modelops/artifacts/breast-cancer/v{number}", "digest": DIGEST},
            "metrics": {"accuracy": 0.9561, "rocAuc": 0.9934},
            "lineage": {
                "build": f"breast-cancer-{number}",
                "datasetUri": "sklearn://breast_cancer",
                "datasetDigest": DATA_DIGEST,
                "trainerImage": "ghcr.io/acme/modelops:0.1.0",
                "estimator": "sklearn.ensemble.RandomForestClassifier",
                "parameters": {"n_estimators": 50, "max_depth": 6},
            },
            "validation": {"primaryMetric": "accuracy", "allowedRegression": 0.01, "autoApprove": False},
            "approval": approval or {"state": "Approved", "by": "dana", "reason": "metrics reviewed"},
        },
        "status": {
            "stage": stage,
            "approvedBy": "dana" if stage == "Approved" else None,
            "approvedAt": APPROVED_AT if stage == "Approved" else None,
            "stageTime": APPROVED_AT,
        },
    }


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "breast-cancer", "namespace": "ml"},
    "spec": {"model": "breast-cancer", "replicas": 4},
    "status": {
        "servingVersion": "breast-cancer-v1",
        "servingVersionNumber": 1,
        "replicas": 4,
        "readyReplicas": 4,
        "endpoint": "http://breast-cancer.ml.svc",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Serving", "message": "serving breast-cancer-v1"}],
        "rollout": {"phase": "Stable"},
    },
}


def canary_deployment() -> dict[str, Any]:
    body = copy.deepcopy(DEPLOYMENT)
    body["status"]["rollout"] = {
        "phase": "Progressing",
        "canaryVersion": "breast-cancer-v2",
        "step": 0,
        "canaryWeight": 25,
        "stableWeight": 75,
    }
    return body


def fetcher(*bodies: dict[str, Any]) -> lineage.Fetch:
    """A fake API server holding these objects."""
    store = {(b["kind"], b["metadata"]["name"]): b for b in bodies}
    return lambda kind, name: copy.deepcopy(store.get((kind.crd.kind, name)))


def render(tree: Any) -> str:
    console = Console(width=400, record=True, color_system=None)
    console.print(tree)
    return console.export_text()


def test_a_stable_deployment_shows_its_version_data_trainer_and_approver() -> None:
    md = ModelDeployment.model_validate(DEPLOYMENT)
    v1 = ModelVersion.model_validate(version_body(1))
    found = lineage.deployment_lineage(
        md, {"breast-cancer-v1": v1}, {"breast-cancer-1": ModelBuild.model_validate(BUILD)}
    )

    assert (found.name, found.namespace, found.ready, found.replicas, found.ready_replicas) == (
        "breast-cancer",
        "ml",
        True,
        4,
        4,
    )
    assert found.rollout_phase == "Stable" and found.canary_weight is None
    [stable] = found.versions
    assert (stable.name, stable.version, stable.track, stable.stage) == ("breast-cancer-v1", 1, "stable", "Approved")
    assert stable.approval == lineage.ApprovalInfo(
        "Approved", "dana", "metrics reviewed", datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
    )
    assert (stable.artifact_uri, stable.artifact_digest, stable.framework) == (
        "file:///tmp/modelops/artifacts/breast-cancer/v1",
        DIGEST,
        "sklearn",
    )
    assert (stable.dataset_uri, stable.dataset_digest) == ("sklearn://breast_cancer", DATA_DIGEST)
    assert stable.trainer_image == "ghcr.io/acme/modelops:0.1.0"
    assert stable.estimator == "sklearn.ensemble.RandomForestClassifier"
    assert stable.params == {"n_estimators": 50, "max_depth": 6}
    assert stable.metrics == {"accuracy": 0.9561, "rocAuc": 0.9934}
    assert stable.build == lineage.BuildRef("breast-cancer-1", exists=True, phase="Succeeded")


def test_a_canary_is_listed_beside_the_stable_version_with_its_weight() -> None:
    fetch = fetcher(canary_deployment(), version_body(1), version_body(2, stage="Approved"), BUILD)
    found = lineage.collect(ModelDeployment, "breast-cancer", fetch)

    assert isinstance(found, lineage.DeploymentLineage)
    assert found.rollout_phase == "Progressing" and found.canary_weight == 25
    assert [(v.name, v.track, v.version) for v in found.versions] == [
        ("breast-cancer-v1", "stable", 1),
        ("breast-cancer-v2", "canary", 2),
    ]
    # v2's build was pruned: the version says so instead of failing
    assert found.versions[1].build == lineage.BuildRef("breast-cancer-2", exists=False)


def test_a_rolled_back_canary_is_not_served() -> None:
    body = canary_deployment()
    body["status"]["rollout"]["phase"] = "RolledBack"
    assert lineage.served(ModelDeployment.model_validate(body)) == [("breast-cancer-v1", "stable")]


def test_a_paused_canary_still_serves_and_the_tree_says_why_it_paused_and_on_what() -> None:
    body = canary_deployment()
    reason = "step 1/2 inconclusive after 60s: error rate: 3 of the 20 requests needed"
    body["status"]["rollout"].update(
        phase="Paused",
        lastDecision={
            "action": "Pause",
            "reason": reason,
            "step": 0,
            "verdict": "Inconclusive",
            "gates": [
                {
                    "gate": "errorRate",
                    "limit": 0.05,
                    "samples": 3,
                    "verdict": "Inconclusive",
                    "detail": "3 of the 20 requests needed",
                },
                {"gate": "latencyRatio", "value": 1.25, "limit": 2, "samples": 3, "verdict": "Pass", "detail": "p95"},
            ],
        },
    )
    found = lineage.collect(ModelDeployment, "breast-cancer", fetcher(body, version_body(1), BUILD))
    assert [v.track for v in found.versions] == ["stable", "canary"], "a paused canary still serves its share"
    assert found.last_decision == f"Pause at step 1: {reason}"
    text = render(lineage_tree.tree(found))
    assert f"last decision: Pause at step 1: {reason}" in text
    assert "Inconclusive: error rate: 3 of the 20 requests needed" in text
    assert "Pass: latency ratio to stable 1.25x (p95)" in text
    assert lineage.as_data(found)["lastDecision"] == f"Pause at step 1: {reason}"


def test_missing_versions_and_builds_are_shown_not_raised() -> None:
    found = lineage.collect(ModelDeployment, "breast-cancer", fetcher(canary_deployment()))

    assert isinstance(found, lineage.DeploymentLineage)
    assert [(v.name, v.found, v.version) for v in found.versions] == [
        ("breast-cancer-v1", False, 1),  # the number comes from the deployment's status
        ("breast-cancer-v2", False, None),
    ]
    text = render(lineage_tree.tree(found))
    assert "stable ModelVersion breast-cancer-v1 (v1): missing" in text
    assert "canary ModelVersion breast-cancer-v2: missing" in text


def test_a_deployment_serving_nothing_says_why() -> None:
    body = copy.deepcopy(DEPLOYMENT)
    body["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "NoApprovedVersion",
                "message": "spec.model: breast-cancer has no Approved version yet",
            }
        ]
    }
    found = lineage.collect(ModelDeployment, "breast-cancer", fetcher(body))

    assert isinstance(found, lineage.DeploymentLineage)
    assert found.versions == [] and found.ready is False
    text = render(lineage_tree.tree(found))
    assert "Not ready" in text
    assert "NoApprovedVersion: spec.model: breast-cancer has no Approved version yet" in text
    assert "serving no version yet" in text


@pytest.mark.parametrize(
    ("approval", "stage", "expected"),
    [
        ({"state": "Pending"}, "Validated", lineage.ApprovalInfo("Pending")),
        (
            {"state": "Rejected", "by": "erin", "reason": "recall too low on March data"},
            "Rejected",
            lineage.ApprovalInfo(
                "Rejected", "erin", "recall too low on March data", datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
            ),
        ),
        # approved by the build's AutoWhenValidated policy: spec.approval stays Pending, the status names the policy
        (
            {"state": "Pending"},
            "Approved",
            lineage.ApprovalInfo(
                "Approved",
                "policy",
                "validated, and the build's policy approves validated versions",
                datetime(2025, 3, 4, 10, 15, tzinfo=UTC),
            ),
        ),
    ],
)
def test_the_approval_names_who_decided_and_when(
    approval: dict[str, Any], stage: str, expected: lineage.ApprovalInfo
) -> None:
    body = version_body(1, stage=stage, approval=approval)
    if stage == "Approved":
        body["status"]["approvedBy"] = "policy"
    assert lineage.approval_of(ModelVersion.model_validate(body)) == expected


def test_a_version_without_lineage_or_status_is_still_shown() -> None:
    body = version_body(3)
    del body["spec"]["lineage"], body["spec"]["approval"], body["status"]
    found = lineage.version_lineage(ModelVersion.model_validate(body), None)

    assert found.stage is None and found.approval == lineage.ApprovalInfo("Pending")
    assert found.dataset_uri is None and found.params == {}
    assert found.build == lineage.BuildRef(None, exists=False)
    text = render(lineage_tree.tree(found))
    assert "ModelVersion breast-cancer-v3 (v3): stage unknown" in text
    assert "build: not recorded" in text


def test_a_build_shows_its_data_and_the_version_it_produced() -> None:
    found = lineage.collect(ModelBuild, "breast-cancer-1", fetcher(BUILD, version_body(1)))

    assert isinstance(found, lineage.BuildLineage)
    assert (found.phase, found.dataset_uri, found.dataset_digest) == (
        "Succeeded",
        "sklearn://breast_cancer",
        DATA_DIGEST,
    )
    assert found.estimator == "sklearn.ensemble.RandomForestClassifier" and found.params["max_depth"] == 6
    assert found.version is not None and found.version.name == "breast-cancer-v1" and found.version.found

    deleted = lineage.collect(ModelBuild, "breast-cancer-1", fetcher(BUILD))
    assert isinstance(deleted, lineage.BuildLineage)
    assert deleted.version == lineage.missing_version("breast-cancer-v1")


def test_a_build_with_a_function_trainer_and_no_status_yet() -> None:
    body = copy.deepcopy(BUILD)
    body["spec"]["trainer"] = {"function": "acme.train:fit", "params": {"alpha": 0.1}}
    del body["status"]
    found = lineage.build_lineage(ModelBuild.model_validate(body), None)

    assert (found.estimator, found.params, found.phase, found.version) == ("acme.train:fit", {"alpha": 0.1}, None, None)
    text = render(lineage_tree.tree(found))
    assert "ModelBuild breast-cancer-1 (namespace ml): not started" in text
    assert "produced no version yet" in text


def test_the_object_asked_about_must_exist() -> None:
    with pytest.raises(lineage.NotFound, match="modelversion 'nope' not found"):
        lineage.collect(ModelVersion, "nope", fetcher())


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        ("md/breast-cancer", ModelDeployment, "breast-cancer"),
        ("modeldeployment/breast-cancer", ModelDeployment, "breast-cancer"),
        ("ModelDeployments/breast-cancer", ModelDeployment, "breast-cancer"),
        ("mv/breast-cancer-v2", ModelVersion, "breast-cancer-v2"),
        ("modelversions.modelops.io/breast-cancer-v2", ModelVersion, "breast-cancer-v2"),
        ("mb/breast-cancer-1", ModelBuild, "breast-cancer-1"),
        ("modelbuild/breast-cancer-1", ModelBuild, "breast-cancer-1"),
    ],
)
def test_kind_names_are_kubectls(text: str, kind: lineage.Kind, name: str) -> None:
    assert lineage.parse_ref(text) == (kind, name)


def test_the_short_names_are_the_crds() -> None:
    import yaml

    from tests.support.paths import ROOT

    for kind in lineage.KINDS:
        crd = yaml.safe_load((ROOT / "crds" / f"{kind.crd.plural}.yaml").read_text())
        assert set(crd["spec"]["names"]["shortNames"]) <= lineage.aliases(kind)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("breast-cancer", "expected KIND/NAME"),
        ("md/", "expected KIND/NAME"),
        ("mm/breast-cancer", "'mm' is not a kind lineage knows: use md (modeldeployment)"),
    ],
)
def test_bad_references_say_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lineage.parse_ref(text)


def test_machine_output_is_camel_case_json_with_user_keys_untouched() -> None:
    found = lineage.collect(ModelDeployment, "breast-cancer", fetcher(canary_deployment(), version_body(1), BUILD))
    data = json.loads(json.dumps(lineage.as_data(found)))

    assert data["kind"] == "ModelDeployment" and data["canaryWeight"] == 25 and data["readyReplicas"] == 4
    stable = data["versions"][0]
    assert stable["artifactDigest"] == DIGEST and stable["datasetUri"] == "sklearn://breast_cancer"
    assert stable["approval"] == {
        "state": "Approved",
        "by": "dana",
        "reason": "metrics reviewed",
        "time": "2025-03-04T10:15:00+00:00",
    }
    assert stable["params"] == {"n_estimators": 50, "max_depth": 6}  # not camelCased
    assert stable["build"] == {"name": "breast-cancer-1", "exists": True, "phase": "Succeeded"}
    assert (data["versions"][1]["name"], data["versions"][1]["found"]) == ("breast-cancer-v2", False)


def test_the_tree_reads_top_down() -> None:
    found = lineage.collect(ModelDeployment, "breast-cancer", fetcher(canary_deployment(), version_body(1), BUILD))
    text = render(lineage_tree.tree(found))

    assert text.splitlines()[0] == (
        "ModelDeployment breast-cancer (namespace ml): Ready, 4/4 replicas, rollout Progressing, canary at 25%"
    )
    for line in (
        "stable ModelVersion breast-cancer-v1 (v1): stage Approved",
        "approval: Approved by dana at 2025-03-04T10:15:00+00:00: metrics reviewed",
        f"artifact: file:///tmp/modelops/artifacts/breast-cancer/v1 {DIGEST}",
        f"dataset: sklearn://breast_cancer {DATA_DIGEST}",
        "estimator: sklearn.ensemble.RandomForestClassifier (n_estimators=50, max_depth=6)",
        "metrics: accuracy=0.9561, rocAuc=0.9934",
        "build: breast-cancer-1 (Succeeded)",
        "canary ModelVersion breast-cancer-v2: missing",
    ):
        assert line in text, f"{line!r} not in\n{text}"


def test_markup_in_user_text_is_shown_literally() -> None:
    body = version_body(1, approval={"state": "Approved", "by": "dana", "reason": "[red]ok[/red] per review"})
    text = render(lineage_tree.tree(lineage.version_lineage(ModelVersion.model_validate(body), None)))
    assert "[red]ok[/red] per review" in text


def monitor_body(deployment: str, version: str) -> dict[str, Any]:
    """A ModelMonitor whose last check found `version` worth less than on its holdout rows."""
    worth = {
        "version": version,
        "track": "stable",
        "metric": "accuracy",
        "holdout": 0.9561,
        "estimated": 0.679,
        "realized": 0.5067,
        "verdict": "Degraded",
        "message": "estimated accuracy 0.679 over 150 records is 0.277 below",
        "estimate": {"records": 150, "accuracy": 0.679},
        "labelled": {"records": 150, "accuracy": 0.5067},
    }
    return {
        "metadata": {"name": "worth", "namespace": "ml"},
        "spec": {"deployment": deployment},
        "status": {"lastCheckTime": APPROVED_AT, "performance": [worth]},
    }


def test_a_served_version_shows_what_its_deployments_monitors_found_it_worth() -> None:
    fetch = fetcher(DEPLOYMENT, version_body(1), BUILD)
    others = [monitor_body("another-deployment", "breast-cancer-v1"), monitor_body("breast-cancer", "breast-cancer-v1")]
    found = lineage.collect(ModelDeployment, "breast-cancer", fetch, lambda: copy.deepcopy(others))
    assert isinstance(found, lineage.DeploymentLineage)
    [seen] = found.versions[0].performance
    assert (seen.monitor, seen.estimated, seen.realized, seen.records, seen.labels) == (
        "worth",
        0.679,
        0.5067,
        150,
        150,
    )
    text = render(lineage_tree.tree(found))
    line = "performance (worth): accuracy: held-out 0.956, estimated 0.679 (150 records), realized 0.507 (150 labels)"
    assert f"{line}: Degraded" in text
    data = lineage.as_data(found)
    assert data["versions"][0]["performance"][0]["verdict"] == "Degraded"
    assert lineage.collect(ModelDeployment, "breast-cancer", fetch).versions[0].performance == [], "no monitor"
