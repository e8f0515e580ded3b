"""A canary judged like a model, on the real control plane with real servers: against the stable version over the
same window (relative latency), on what it answers (prediction divergence), as a shadow answering only mirrored
requests (agreement with stable on the same records, and errors callers never see), and, when its step cannot be
judged, paused for an approver whose answer the API server guards and the operator records."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from modelops.devcluster.traffic import service_url
from tests.support.cli import modelops
from tests.support.deployments import approve, condition, deployment, status, traffic, version
from tests.support.kube import APPROVERS, MALLORY, Kubectl, tenant
from tests.support.operator import Operator
from tests.support.storage import Store
from tests.support.training import train_bundled
from tests.support.waiting import eventually

FOREST, LINEAR = "sklearn.ensemble.RandomForestClassifier", "sklearn.linear_model.LogisticRegression"
DUMMY = "sklearn.dummy.DummyClassifier"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, store: Store) -> dict[str, dict]:
    """Four classifiers of the same features: a fast one, a slow one (a large forest), a forest, and one that answers
    every record with class 0 (HTTP 200, other predictions); and one of other features, which refuses every record
    of these (HTTP 400)."""
    folder = f"shared/canary-analysis-{uuid.uuid4().hex[:6]}"
    return {
        key: store.keep(
            train_bundled(tmp_path_factory.mktemp(key), dataset, estimator, params, calibration), f"{folder}/{key}"
        )
        for key, dataset, estimator, params, calibration in (
            ("linear", "breast_cancer", LINEAR, {"max_iter": 3000}, "Sigmoid"),
            ("slow", "breast_cancer", FOREST, {"n_estimators": 400}, "Sigmoid"),
            ("forest", "breast_cancer", FOREST, {"n_estimators": 10}, "Sigmoid"),
            # calibrated, a constant answer would become the majority class: left as it is, it answers 0
            ("constant", "breast_cancer", DUMMY, {"strategy": "constant", "constant": 0}, "None"),
            ("wine", "wine", LINEAR, {"max_iter": 3000}, "Sigmoid"),
        )
    }


def mixed_records() -> list[dict[str, Any]]:
    """Ten malignant and ten benign tumours: a good model answers both classes."""
    frame = load_breast_cancer(as_frame=True).frame
    picked = [frame[frame.target == 0].head(10), frame[frame.target == 1].head(10)]
    return [r for part in picked for r in part.drop(columns=["target"]).to_dict(orient="records")]


def canary(pause: str = "20s", shadow: dict[str, Any] | None = None, **analysis: Any) -> dict[str, Any]:
    """One canary step at half the replicas, after a shadow step if one is given."""
    return {
        "strategy": "Canary",
        "canary": {
            "steps": [*([shadow] if shadow else []), {"weight": 50, "pause": pause}],
            "analysis": {"maxErrorRate": 0.05, "maxLatency": "2s", "minRequests": 10, **analysis},
        },
    }


def rolled_back(kubectl: Kubectl) -> dict[str, Any]:
    return eventually(
        lambda: status(kubectl).get("rollout", {}).get("phase") == "RolledBack" and status(kubectl)["rollout"],
        timeout=180,
        what="rolled back",
    )


def gates(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["gate"]: g for g in decision.get("gates", [])}


def test_a_canary_answering_200_with_other_predictions_is_rolled_back_by_the_divergence_gate(
    kubectl: Kubectl, operator: Operator, artifacts: dict
) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    kubectl.apply(deployment(rollout=canary(maxPredictionDivergence=0.1, minRecords=100)))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    with traffic(kubectl, mixed_records()):
        kubectl.apply(version(2, artifacts["constant"]))
        approve(kubectl, 2)
        rollout = rolled_back(kubectl)

    decision = rollout["lastDecision"]
    measured = gates(decision)
    assert decision["action"] == "RollBack" and "prediction divergence" in decision["reason"]
    assert measured["errorRate"]["verdict"] == "Pass" and measured["errorRate"]["value"] == 0, "HTTP was healthy"
    divergence = measured["predictionDivergence"]
    assert divergence["verdict"] == "Fail" and divergence["value"] > 0.1 and divergence["samples"] >= 100
    assert status(kubectl)["servingVersion"] == "cancer-v1"
    assert [d["action"] for d in rollout["decisions"]] == ["Start", "RollBack"]
    stalled = condition(kubectl, "Stalled")
    assert stalled["reason"] == "RolledBack"
    assert "rolled back to cancer-v1" in stalled["message"]
    assert "the spec still selects cancer-v2, the latest Approved version" in stalled["message"]
    assert "modelops reject mv/cancer-v2" in stalled["message"]
    wide = kubectl.run("get", "md", "cancer", "-o", "wide").stdout
    assert "prediction divergence" in wide, "kubectl get -o wide shows why"


def test_a_canary_slower_than_stable_is_rolled_back_by_the_latency_ratio_though_under_the_absolute_limit(
    kubectl: Kubectl, operator: Operator, artifacts: dict
) -> None:
    kubectl.apply(version(1, artifacts["linear"]))
    approve(kubectl, 1)
    kubectl.apply(deployment(rollout=canary(maxLatencyRatio=2)))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    with traffic(kubectl, mixed_records()):
        kubectl.apply(version(2, artifacts["slow"]))
        approve(kubectl, 2)
        rollout = rolled_back(kubectl)

    measured = gates(rollout["lastDecision"])
    assert measured["latency"]["verdict"] == "Pass" and measured["latency"]["value"] < 2, "the absolute limit passes"
    ratio = measured["latencyRatio"]
    assert ratio["verdict"] == "Fail" and ratio["value"] > 2, ratio
    assert "latency ratio to stable" in rollout["lastDecision"]["reason"]
    assert status(kubectl)["servingVersion"] == "cancer-v1"
    # not retried by itself: the version the spec still selects stays rolled back
    eventually(lambda: kubectl.run("get", "deployment", "cancer-canary", check=False).returncode != 0, what="gone")
    assert status(kubectl)["rollout"]["phase"] == "RolledBack"


def test_a_starved_canary_pauses_and_only_an_approvers_answer_moves_it(
    kubectl: Kubectl, operator: Operator, artifacts: dict
) -> None:
    mallory = tenant(kubectl)  # every verb on the four kinds in her namespace, not an approver
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    kubectl.apply(deployment(rollout=canary(pause="5s")))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    kubectl.apply(version(2, artifacts["linear"]))  # no traffic at all: nothing to judge it on
    approve(kubectl, 2)
    paused = eventually(
        lambda: status(kubectl).get("rollout", {}).get("phase") == "Paused" and status(kubectl)["rollout"],
        timeout=120,
        what="paused",
    )
    assert paused["lastDecision"]["action"] == "Pause" and paused["lastDecision"]["verdict"] == "Inconclusive"
    assert "0 of the 10 requests needed" in paused["lastDecision"]["reason"]
    assert condition(kubectl, "Stalled")["reason"] == "RolloutPaused"

    namespace = kubectl.namespace or ""
    refused = modelops("rollout", "promote", "md/cancer", "-n", namespace, "--reason", "ship it", user=MALLORY)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "only approvers may promote, abort or retry a rollout" in refused.stderr
    assert f"{MALLORY} is not one" in refused.stderr
    by_hand = mallory.run("annotate", "md", "cancer", "modelops.io/rollout-command=promote", check=False)
    assert by_hand.returncode != 0 and "only approvers may" in by_hand.stderr
    forged = kubectl.as_user("alice", APPROVERS).run(
        "annotate",
        "md",
        "cancer",
        "modelops.io/rollout-command=promote",
        "modelops.io/rollout-command-by=carol",
        check=False,
    )
    assert forged.returncode != 0 and "must be your own user name, alice, not carol" in forged.stderr
    assert status(kubectl)["rollout"]["phase"] == "Paused"

    retried = modelops("rollout", "retry", "md/cancer", "-n", namespace, user="alice", groups=(APPROVERS,))
    assert retried.returncode == 0, retried.stderr
    eventually(
        lambda: [d["action"] for d in status(kubectl)["rollout"]["decisions"]][-2:] == ["Retry", "Pause"],
        timeout=60,
        what="measured again, paused again",
    )
    answer = modelops(
        "rollout",
        "promote",
        "md/cancer",
        "-n",
        namespace,
        "--reason",
        "seasonal lull",
        user="alice",
        groups=(APPROVERS,),
    )
    assert answer.returncode == 0, answer.stderr
    eventually(lambda: status(kubectl).get("servingVersion") == "cancer-v2", timeout=60, what="promoted")
    record = status(kubectl)["rollout"]["decisions"]
    assert [d["action"] for d in record] == ["Start", "Pause", "Retry", "Pause", "Promote"]
    promoted = record[-1]
    assert promoted["by"] == "alice" and promoted["reason"] == "promote by alice: seasonal lull" and promoted["asked"]
    assert record[2]["by"] == "alice"
    annotations = kubectl.get("md", "cancer")["metadata"].get("annotations", {})
    assert not any(k.startswith("modelops.io/rollout-command") for k in annotations), "acted on once, then removed"
    events = kubectl.get("events", "--field-selector", "involvedObject.name=cancer")["items"]
    messages = [e["message"] for e in events if e["reason"] == "CanaryPromoted"]
    assert any("promote by alice: seasonal lull" in m for m in messages), messages
    history = [(h["version"], h["track"], h.get("endReason")) for h in status(kubectl)["history"]]
    assert history[-2:] == [("cancer-v2", "canary", "Promoted"), ("cancer-v2", "stable", None)]
    assert json.loads(kubectl.run("get", "md", "cancer", "-o", "json").stdout)["status"]["rollout"]["phase"] == "Stable"


def mirroring(kubectl: Kubectl) -> None:
    """Wait until the shadow answers and the Service sends every request to a stable pod that mirrors to it: the
    stable servers rolled to be told, and the pods they replaced, which mirror nothing, are gone from its endpoints
    (a Deployment's counts leave out a pod still draining, which kube-proxy may still pick for a moment)."""
    eventually(lambda: status(kubectl).get("rollout", {}).get("mirror") == 100, timeout=60, what="a shadow step")

    def told(pod: dict[str, Any]) -> bool:
        return any(e["name"] == "MODELOPS_SHADOW_URL" for e in pod["spec"]["containers"][0].get("env", []))

    def rolled() -> bool:
        if kubectl.get("deployment", "cancer-shadow").get("status", {}).get("readyReplicas") != 1:
            return False
        pods = kubectl.get("pods", "-l", "modelops.io/track=stable")["items"]
        mirrors = {p["status"].get("podIP") for p in pods if told(p) and "deletionTimestamp" not in p["metadata"]}
        slices = kubectl.get("endpointslices", "-l", "kubernetes.io/service-name=cancer")["items"]
        endpoints = [e for s in slices for e in s.get("endpoints") or []]
        routed = {a for e in endpoints for a in e["addresses"]}
        ready = all(e.get("conditions", {}).get("ready") for e in endpoints)
        return len(mirrors) == 2 and routed == mirrors and ready

    eventually(rolled, timeout=180, what="the Service routing only to stable pods mirroring to a ready shadow")


def predictions(url: str, records: list[dict[str, Any]]) -> list[Any]:
    answer = httpx.post(f"{url}/predict", json={"records": records}, timeout=10)
    answer.raise_for_status()
    return answer.json()["predictions"]


def test_a_shadow_step_reports_the_agreement_with_stable_on_the_same_records_and_callers_get_only_stable(
    kubectl: Kubectl, operator: Operator, artifacts: dict
) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    shadow = {"weight": 0, "mirror": 100, "pause": "90s"}  # the stable pods roll (to be told) inside the window
    rollout = canary(pause="5m", shadow=shadow, minAgreement=0.2, minRecords=100, minRequests=5)
    kubectl.apply(deployment(rollout=rollout))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    kubectl.apply(version(2, artifacts["constant"]))
    approve(kubectl, 2)
    mirroring(kubectl)
    eventually(
        lambda: "measuring" in status(kubectl)["rollout"].get("lastDecision", {}).get("reason", ""),
        timeout=60,
        what="the shadow step's window begun",
    )
    records = mixed_records()
    stable_url, shadow_url = (
        service_url(kubectl.get("service", "cancer")),
        service_url(kubectl.get("service", "cancer-shadow")),
    )
    callers = [httpx.post(f"{stable_url}/predict", json={"records": records}, timeout=10) for _ in range(8)]
    assert all(c.status_code == 200 for c in callers), [c.text for c in callers if c.status_code != 200]
    assert {c.json()["version"] for c in callers} == {"1"}, "callers get only the stable answer"
    # what the test computes itself: both models' answers to the same records, asked of each Service directly
    ours, theirs = predictions(stable_url, records), predictions(shadow_url, records)
    expected = sum(a == b for a, b in zip(ours, theirs, strict=True)) / len(records)
    assert 0 < expected < 1, (ours, theirs)

    advanced = eventually(
        lambda: next((d for d in status(kubectl)["rollout"].get("decisions", []) if d["action"] == "Advance"), None),
        timeout=120,
        what="the shadow step judged",
    )
    agreement = gates(advanced)["agreement"]
    assert agreement["verdict"] == "Pass" and agreement["samples"] == 9 * len(records), agreement
    assert agreement["value"] == pytest.approx(expected, abs=1e-6)
    assert advanced["step"] == 0 and "(shadow)" in advanced["reason"]
    assert gates(advanced)["errorRate"]["samples"] >= 9, "the shadow answered the mirrored requests itself"
    eventually(lambda: kubectl.run("get", "deployment", "cancer-shadow", check=False).returncode != 0, what="gone")
    eventually(lambda: status(kubectl)["rollout"].get("canaryWeight") == 50, timeout=60, what="the canary step")


def test_a_shadow_failing_every_request_changes_nothing_for_callers_and_is_rolled_back(
    kubectl: Kubectl, operator: Operator, artifacts: dict
) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    shadow = {"weight": 0, "mirror": 100, "pause": "2m"}
    kubectl.apply(deployment(rollout=canary(shadow=shadow, minRequests=40)))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    with traffic(kubectl, mixed_records()) as callers:
        kubectl.apply(version(2, artifacts["wine"]))  # other features: it refuses every record with HTTP 400
        approve(kubectl, 2)
        rollout = rolled_back(kubectl)
        eventually(lambda: kubectl.run("get", "deployment", "cancer-shadow", check=False).returncode != 0, what="gone")

    assert callers.failed == 0 and callers.answered > 40, (callers.answered, callers.failures)
    assert set(callers.versions) == {"1"}
    error_rate = gates(rollout["lastDecision"])["errorRate"]
    assert error_rate["verdict"] == "Fail" and error_rate["value"] == 1 and error_rate["samples"] >= 40
    compared = rollout["measurement"]["shadow"]
    assert compared["compared"] == 0 and compared["rejected"] >= 30, compared  # counted as each answer comes back
    assert status(kubectl)["servingVersion"] == "cancer-v1"
