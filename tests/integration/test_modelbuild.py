"""ModelBuild → training Job → real trainer → ModelVersion, on the real control plane."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from tests.support.builds import BUILD, phase
from tests.support.kube import Kubectl
from tests.support.operator import Operator
from tests.support.storage import Store
from tests.support.waiting import eventually


def build(name: str, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(BUILD)
    document["metadata"]["name"] = name
    for path, value in changes.items():
        node = document["spec"]
        *parents, leaf = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return document


def events(kubectl: Kubectl, name: str) -> list[dict]:
    return kubectl.get("events", "--field-selector", f"involvedObject.name={name}")["items"]


def test_build_trains_and_records_a_version(kubectl: Kubectl, operator: Operator, store: Store, image: str) -> None:
    kubectl.apply(build("cancer-1"))
    done = phase(kubectl, "cancer-1")
    status = done["status"]
    assert status["phase"] == "Succeeded", operator.log()[-3000:]
    assert status["modelVersion"] == "cancer-v1"
    assert status["datasetDigest"].startswith("sha256:")
    assert status["metrics"]["accuracy"] > 0.9
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["observedGeneration"] == done["metadata"]["generation"]

    job = kubectl.get("job", status["jobName"])
    assert job["metadata"]["name"] == "cancer-1-train"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "ModelBuild"
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["activeDeadlineSeconds"] == 600
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    container = pod_spec["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["memory"] == "2Gi"
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "modelops" and labels["modelops.io/model"] == "cancer"

    versions = kubectl.get("mv", "-l", "modelops.io/model=cancer")["items"]
    assert [v["metadata"]["name"] for v in versions] == ["cancer-v1"]
    spec = versions[0]["spec"]
    assert spec["version"] == 1 and spec["metrics"] == status["metrics"]
    assert spec["artifact"]["digest"].startswith("sha256:")
    assert spec["artifact"]["uri"].startswith(f"s3://modelops/{kubectl.namespace}/cancer/cancer-1/")
    assert store.exists(spec["artifact"]["uri"])
    assert spec["lineage"] == {
        "build": "cancer-1",
        "buildUid": done["metadata"]["uid"],
        "datasetUri": "sklearn://breast_cancer",
        "datasetDigest": status["datasetDigest"],
        "trainerImage": image,
        "estimator": "sklearn.linear_model.LogisticRegression",
        "parameters": {"max_iter": 2000},
    }
    assert len(spec["features"]) == 30
    stage = eventually(lambda: kubectl.get("mv", "cancer-v1").get("status", {}).get("stage"), what="stage")
    assert stage == "Validated"
    reasons = {e["reason"] for e in events(kubectl, "cancer-1")}
    assert "Trained" in reasons


def test_failing_build_reports_the_trainer_reason(kubectl: Kubectl, operator: Operator) -> None:
    columns = [{"name": "mean radius", "type": "number", "minimum": 0, "maximum": 10}]
    kubectl.apply(build("narrow", dataset__columns=columns))
    status = phase(kubectl, "narrow")["status"]
    assert status["phase"] == "Failed"
    assert status["failureReason"] == "DataValidationFailed"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert "column 'mean radius'" in stalled["message"] and "above the maximum 10" in stalled["message"]
    warning = [e for e in events(kubectl, "narrow") if e["type"] == "Warning"]
    assert warning and "mean radius" in warning[0]["message"]
    assert len(kubectl.get("pods", "-l", "batch.kubernetes.io/job-name=narrow-train")["items"]) == 1, (
        "a data error must not be retried"
    )
    assert not kubectl.get("mv", "-l", "modelops.io/model=cancer")["items"]


def test_out_of_memory_is_the_reason(kubectl: Kubectl, operator: Operator) -> None:
    resources = {"limits": {"memory": "60Mi"}}
    kubectl.apply(build("tiny", trainer__resources=resources, trainer__retries=0))
    status = phase(kubectl, "tiny")["status"]
    assert status["failureReason"] == "OOMKilled"
    assert "60Mi" in next(c for c in status["conditions"] if c["type"] == "Stalled")["message"]


def test_deadline_is_the_reason(kubectl: Kubectl, operator: Operator) -> None:
    kubectl.apply(build("slow", trainer__activeDeadline="1s", trainer__retries=0))
    status = phase(kubectl, "slow")["status"]
    assert status["failureReason"] == "DeadlineExceeded"
    assert "activeDeadline (1s)" in next(c for c in status["conditions"] if c["type"] == "Stalled")["message"]


def test_version_below_threshold_is_rejected(kubectl: Kubectl, operator: Operator) -> None:
    kubectl.apply(build("strict", evaluation={"thresholds": [{"metric": "accuracy", "min": 0.999}]}))
    assert phase(kubectl, "strict")["status"]["phase"] == "Succeeded"
    version = eventually(
        lambda: (v := kubectl.get("mv", "cancer-v1")).get("status", {}).get("stage") and v, what="stage"
    )
    assert version["status"]["stage"] == "Rejected"
    check = version["status"]["checks"][0]
    assert check["name"] == "threshold:accuracy" and not check["passed"] and ">= 0.999" in check["message"]
    assert any(e["type"] == "Warning" and e["reason"] == "Rejected" for e in events(kubectl, "cancer-v1"))


def test_killing_the_operator_mid_build_duplicates_nothing(kubectl: Kubectl, operator: Operator) -> None:
    kubectl.apply(build("survivor"))
    eventually(lambda: kubectl.run("get", "job", "survivor-train", check=False).returncode == 0, what="the Job")
    operator.kill()
    time.sleep(2)
    operator.start()
    assert phase(kubectl, "survivor")["status"]["phase"] == "Succeeded"
    operator.kill()  # once more, after the version exists: a resume must not record a second one
    operator.start()
    time.sleep(5)
    assert len(kubectl.get("jobs")["items"]) == 1
    assert [v["metadata"]["name"] for v in kubectl.get("mv")["items"]] == ["cancer-v1"]


@pytest.mark.parametrize("builds", [3])
def test_concurrent_builds_get_distinct_versions(kubectl: Kubectl, operator: Operator, builds: int) -> None:
    for i in range(builds):
        kubectl.apply(build(f"parallel-{i}"))
    finished = [phase(kubectl, f"parallel-{i}")["status"] for i in range(builds)]
    assert sorted(s["modelVersion"] for s in finished) == [f"cancer-v{i + 1}" for i in range(builds)]
