"""ModelDeployment on the real control plane, with real BentoML server pods: children, scale, approval gate,
a canary promoted on good measurements, a canary rolled back on a high error rate, history, deletion."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from tests.support.deployments import approve, condition, deployment, routed_url, status, traffic, version
from tests.support.kube import Kubectl
from tests.support.operator import Operator
from tests.support.prometheus import Prometheus
from tests.support.storage import Store
from tests.support.training import train_bundled
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, store: Store) -> dict[str, dict]:
    """Three trained models in the store: two compatible ones, and one trained on other features (it refuses
    cancer records)."""
    forest, linear = "sklearn.ensemble.RandomForestClassifier", "sklearn.linear_model.LogisticRegression"
    folder = f"shared/deployments-{uuid.uuid4().hex[:6]}"
    return {
        key: store.keep(train_bundled(tmp_path_factory.mktemp(key), dataset, estimator, params), f"{folder}/{key}")
        for key, dataset, estimator, params in (
            ("forest", "breast_cancer", forest, {"n_estimators": 10}),
            ("linear", "breast_cancer", linear, {"max_iter": 3000}),
            ("wine", "wine", linear, {"max_iter": 3000}),
        )
    }


def test_serves_the_latest_approved_version(kubectl: Kubectl, operator: Operator, artifacts: dict) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    kubectl.apply(deployment(runtime={"resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}}))
    stalled = eventually(
        lambda: condition(kubectl, "Stalled").get("status") == "True" and condition(kubectl, "Stalled"), what="Stalled"
    )
    assert (
        stalled["reason"] == "NoApprovedVersion" and "spec.model: cancer has no Approved version" in stalled["message"]
    )

    approve(kubectl, 1)
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="Ready")
    current = status(kubectl)
    assert current["servingVersion"] == "cancer-v1" and current["readyReplicas"] == 2
    assert current["endpoint"] == f"http://cancer.{kubectl.namespace}.svc:80"

    server = kubectl.get("deployment", "cancer")
    assert server["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    pod = server["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["modelops", "serve", "--port", "3000"]
    assert {p for p in ("startupProbe", "readinessProbe", "livenessProbe") if p in container} == {
        "startupProbe",
        "readinessProbe",
        "livenessProbe",
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert labels["modelops.io/version"] == "1" and labels["app.kubernetes.io/part-of"] == "modelops"
    service = kubectl.get("service", "cancer")
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/instance": "cancer",
        "app.kubernetes.io/component": "server",
    }

    records = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(2).to_dict(orient="records")
    answer = httpx.post(f"{routed_url(kubectl)}/predict", json={"records": records}, timeout=10).json()
    assert answer["version"] == "1" and len(answer["predictions"]) == 2

    kubectl.run("scale", "md/cancer", "--replicas=3")
    eventually(lambda: kubectl.get("deployment", "cancer")["spec"]["replicas"] == 3, what="scaled Deployment")
    eventually(lambda: status(kubectl).get("readyReplicas") == 3, timeout=120, what="3 ready")

    # What somebody changes by hand is put back, as soon as the watch brings it: no later event is needed.
    uid = kubectl.get("service", "cancer")["metadata"]["uid"]
    kubectl.run("delete", "service", "cancer")
    eventually(
        lambda: (
            (found := kubectl.get("service", "--field-selector=metadata.name=cancer")["items"])
            and found[0]["metadata"]["uid"] != uid
        ),
        what="Service put back",
    )
    kubectl.run("scale", "deployment", "cancer", "--replicas=1")
    kubectl.run("label", "deployment", "cancer", "app.kubernetes.io/part-of-")
    eventually(
        lambda: (
            (server := kubectl.get("deployment", "cancer"))["spec"]["replicas"] == 3
            and server["metadata"]["labels"].get("app.kubernetes.io/part-of") == "modelops"
        ),
        what="Deployment's replicas and label put back",
    )


WORKER = "_bentoml_impl.worker.service"
#: The server container's processes, by command line, read from /proc (the image has no `ps`).
PROCESSES = "import pathlib; print('\\n'.join(p.read_bytes().replace(b'\\0', b' ').decode() for p in pathlib.Path('/proc').glob('[0-9]*/cmdline')))"


def test_each_server_runs_the_worker_processes_its_spec_asks_for(
    kubectl: Kubectl, operator: Operator, artifacts: dict
) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=1, runtime={"workers": 2}))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=180, what="Ready")
    pod = kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"][0]["metadata"]["name"]
    listed = kubectl.run("exec", pod, "--", "python", "-c", PROCESSES).stdout
    assert listed.count(WORKER) == 2, listed
    url = routed_url(kubectl)
    records = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(2).to_dict(orient="records")
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        answers = [client.post(f"{url}/predict", json={"records": records}).status_code for _ in range(20)]
    assert answers == [200] * 20
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'modelops_requests_total{model="cancer",version="1"} 20.0' in metrics, "both workers' counts, summed"


def test_an_unapproved_version_is_refused(kubectl: Kubectl, operator: Operator, artifacts: dict) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    kubectl.apply(deployment(version=1))
    stalled = eventually(
        lambda: condition(kubectl, "Stalled").get("status") == "True" and condition(kubectl, "Stalled"), what="Stalled"
    )
    assert stalled["reason"] == "VersionNotApproved"
    assert "spec.version: cancer-v1 is Validated, not Approved" in stalled["message"]
    assert kubectl.run("get", "deployment", "cancer", check=False).returncode != 0, "nothing may serve it"

    approve(kubectl, 1)
    eventually(lambda: status(kubectl).get("servingVersion") == "cancer-v1", what="served once approved")


def test_autoscaling_creates_an_hpa(kubectl: Kubectl, operator: Operator, artifacts: dict) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    kubectl.apply(deployment(autoscaling={"minReplicas": 2, "maxReplicas": 5, "targetCpuUtilization": 60}))
    hpa = eventually(lambda: kubectl.run("get", "hpa", "cancer", "-o", "json", check=False).stdout, what="HPA")
    spec = json.loads(hpa)["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cancer"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 5)
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


ANALYSIS = {"maxErrorRate": 0.05, "maxLatency": "2s", "minRequests": 10}
CANARY = {
    "strategy": "Canary",
    "canary": {"steps": [{"weight": 25, "pause": "4s"}, {"weight": 50, "pause": "4s"}], "analysis": ANALYSIS},
}


def test_canary_is_promoted_then_a_bad_one_is_rolled_back(
    kubectl: Kubectl, operator: Operator, artifacts: dict
) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=2, rollout=CANARY))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    with traffic(kubectl):
        kubectl.apply(version(2, artifacts["linear"]))
        approve(kubectl, 2)
        eventually(lambda: status(kubectl).get("rollout", {}).get("phase") == "Progressing", what="canary started")
        canary = kubectl.get("deployment", "cancer-canary")
        assert canary["spec"]["template"]["metadata"]["labels"]["modelops.io/version"] == "2"
        eventually(lambda: status(kubectl).get("servingVersion") == "cancer-v2", timeout=180, what="v2 promoted")
        promoted = status(kubectl)
        assert promoted["rollout"]["phase"] == "Stable"
        assert promoted["rollout"]["lastDecision"]["action"] == "Promote"
        record = promoted["rollout"]["decisions"]
        assert [d["action"] for d in record] == ["Start", "Advance", "Promote"]
        assert [d["step"] for d in record] == [0, 0, 1] and all(d["verdict"] == "Pass" for d in record[1:])
        for gate in record[-1]["gates"]:  # each measurement: value, limit, samples, verdict
            assert gate["verdict"] == "Pass" and gate["value"] <= gate["limit"] and gate["samples"] >= 10, gate
        eventually(
            lambda: kubectl.run("get", "deployment", "cancer-canary", check=False).returncode != 0, what="canary gone"
        )

        kubectl.apply(version(3, artifacts["wine"]))  # answers cancer records with 400s
        approve(kubectl, 3)
        eventually(
            lambda: status(kubectl).get("rollout", {}).get("phase") == "RolledBack", timeout=180, what="rolled back"
        )

    final = status(kubectl)
    assert final["servingVersion"] == "cancer-v2"
    assert "error rate" in final["rollout"]["lastDecision"]["reason"]
    stalled = condition(kubectl, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "RolledBack"
    assert stalled["message"].startswith("rolled back to cancer-v2 (canary cancer-v3: error rate")
    assert "the spec still selects cancer-v3" in stalled["message"]
    history = [(h["version"], h["track"], h.get("endReason")) for h in final["history"]]
    assert history == [
        ("cancer-v1", "stable", "Replaced"),
        ("cancer-v2", "canary", "Promoted"),
        ("cancer-v2", "stable", None),
        ("cancer-v3", "canary", "RolledBack"),
    ]
    reasons = [e["reason"] for e in kubectl.get("events", "--field-selector", "involvedObject.name=cancer")["items"]]
    assert {"CanaryStarted", "CanaryPromoted", "CanaryRolledBack"} <= set(reasons)
    # What the dashboard's rollout panels read from the operator.
    scraped = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text
    series = f'deployment="cancer",namespace="{kubectl.namespace}"'
    for decision, count in (("Start", 2), ("Promote", 1), ("RollBack", 1)):
        assert f'modelops_rollout_decisions_total{{decision="{decision}",{series}}} {count:.1f}' in scraped, decision
    assert (
        f'modelops_deployment_serving_version{{deployment="cancer",model="cancer",namespace="{kubectl.namespace}"}} 2.0'
        in scraped
    )
    assert f"modelops_rollout_canary_weight{{{series}}} 0.0" in scraped
    eventually(
        lambda: kubectl.run("get", "deployment", "cancer-canary", check=False).returncode != 0, what="canary gone"
    )


def test_deleting_the_deployment_removes_its_children(kubectl: Kubectl, operator: Operator, artifacts: dict) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    kubectl.apply(deployment(autoscaling={"maxReplicas": 3}))
    eventually(lambda: status(kubectl).get("servingVersion"), what="serving")
    eventually(lambda: kubectl.run("get", "hpa", "cancer", check=False).returncode == 0, what="HPA")
    kubectl.run("delete", "md", "cancer", "--wait=true", "--timeout=60s")
    for kind in ("deployment", "service", "hpa"):
        eventually(lambda k=kind: kubectl.run("get", k, "cancer", check=False).returncode != 0, what=f"{kind} deleted")
    eventually(lambda: not kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"], what="pods deleted")


def test_canary_measured_through_prometheus(
    kubectl: Kubectl, prometheus: Prometheus, operator: Operator, artifacts: dict
) -> None:
    kubectl.apply(version(1, artifacts["forest"]))
    approve(kubectl, 1)
    # Until Prometheus scrapes the pods, every step is inconclusive: measured again, up to maxInconclusive times.
    patient = {**CANARY, "canary": {**CANARY["canary"], "analysis": {**ANALYSIS, "maxInconclusive": 10}}}
    kubectl.apply(deployment(replicas=2, rollout=patient, metrics={"prometheus": {"url": prometheus.url}}))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="v1 Ready")

    with traffic(kubectl):
        kubectl.apply(version(2, artifacts["linear"]))
        approve(kubectl, 2)
        # Prometheus scrapes nothing yet: the pods answer traffic, but the operator, reading Prometheus, sees none.
        waiting = eventually(
            lambda: (
                "0 of the 10 requests needed"
                in (status(kubectl).get("rollout", {}).get("lastDecision") or {}).get("reason", "")
                and status(kubectl)["rollout"]
            ),
            timeout=60,
            what="waiting for requests",
        )
        assert waiting["phase"] == "Progressing" and waiting["measurement"]["requests"] == 0
        assert waiting["measurement"]["source"] == "prometheus"

        pods = kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"]
        addresses = [f"{p['status']['podIP']}:3000" for p in pods if p.get("status", {}).get("podIP")]
        prometheus.set_targets(addresses, kubectl.namespace)
        eventually(lambda: status(kubectl).get("servingVersion") == "cancer-v2", timeout=180, what="v2 promoted")
    rollout = status(kubectl)["rollout"]
    decision = rollout["lastDecision"]
    assert decision["action"] == "Promote" and "over" in decision["reason"]
    assert {g["gate"]: g["verdict"] for g in decision["gates"]} == {"errorRate": "Pass", "latency": "Pass"}
    assert "Retry" in [d["action"] for d in rollout["decisions"]], "a step without data was measured again"
