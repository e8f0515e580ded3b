"""The trust boundary's pure decisions: what the administrator allows, which objects are a resource's own, what a
trainer may claim, which pods fail and why, what a version's servers are, and what may be said in public."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelops.api.v1alpha1 import ModelBuild, ModelDeploymentStatus, ModelVersion
from modelops.api.v1alpha1.modelversion import ServingRef
from modelops.contract.training import TrainResult
from modelops.controllers import http
from modelops.controllers.kube import NotOwned, check_owned
from modelops.resources import modelbuild, podstate
from modelops.resources import modelversion as versions
from modelops.resources.measure import Scope, prometheus_queries, serving_totals
from modelops.resources.policy import Policy
from modelops.runtime.redact import redact

POLICY = Policy(
    prometheus_urls=("http://prometheus.monitoring.svc:9090/",),
    webhook_prefixes=("https://hooks.example.com/services/",),
    artifact_prefixes=("s3://models/{namespace}/",),
)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.com/services/T0/B1/token", True),
        ("https://hooks.example.com/services", True),
        ("https://hooks.example.com/servicesX/x", False),  # a sibling path, not below the prefix
        ("https://hooks.example.com.evil.net/services/x", False),
        ("https://evil.net/?https://hooks.example.com/services/", False),
        ("https://hooks.example.com@evil.net/services/x", False),  # the host is evil.net
        ("http://hooks.example.com/services/x", False),  # another scheme
        ("https://hooks.example.com:8443/services/x", False),  # another port
        ("http://169.254.169.254/latest/meta-data/", False),
    ],
)
def test_a_webhook_must_lie_under_an_allowed_prefix(url: str, allowed: bool) -> None:
    assert POLICY.webhook_allowed(url) is allowed


def test_prometheus_servers_and_artifact_locations_are_the_administrators() -> None:
    assert POLICY.prometheus_allowed("http://prometheus.monitoring.svc:9090")
    assert not POLICY.prometheus_allowed("http://prometheus.monitoring.svc:9090/api/v1/query?query=up")
    assert not POLICY.prometheus_allowed("http://127.0.0.1:9090")
    assert POLICY.artifact_allowed("s3://models/team-a/cancer/b1/model.bentomodel", "team-a")
    assert not POLICY.artifact_allowed("s3://models/team-b/cancer/b1/model.bentomodel", "team-a")
    assert not POLICY.artifact_allowed("s3://models/team-ab/cancer/b1/model.bentomodel", "team-a")
    assert Policy().artifact_allowed("file:///anywhere", "team-a"), "no prefixes: anywhere"
    assert not Policy().webhook_allowed("https://hooks.example.com/x") and not Policy().prometheus_allowed("http://p")


def test_only_children_controlled_by_the_resource_are_its_own() -> None:
    ours = {
        "metadata": {"ownerReferences": [{"kind": "ModelDeployment", "name": "d", "uid": "u1", "controller": True}]}
    }
    check_owned(None, "Service", "d", "u1")
    check_owned(ours, "Service", "d", "u1")
    with pytest.raises(NotOwned, match="Service d already exists and is not this resource's"):
        check_owned(ours, "Service", "d", "u2")  # a ModelDeployment of the same name, deleted and made again
    with pytest.raises(NotOwned, match="nothing controls it"):
        check_owned({"metadata": {"name": "d"}}, "Service", "d", "u1")
    merely_owned = {"metadata": {"ownerReferences": [{"kind": "ModelDeployment", "uid": "u1", "controller": False}]}}
    with pytest.raises(NotOwned):
        check_owned(merely_owned, "Service", "d", "u1")


BUILD = ModelBuild.model_validate(
    {
        "metadata": {"name": "b1", "namespace": "team-a", "uid": "u"},
        "spec": {
            "model": "cancer",
            "task": "classification",
            "dataset": {"uri": "sklearn://breast_cancer", "target": "target"},
            "trainer": {"estimator": {"className": "sklearn.linear_model.LogisticRegression"}},
            "artifacts": {"uri": "s3://models/"},
        },
    }
)
DIGEST = "sha256:" + "a" * 64


def result(artifact: str, baseline: str | None = None, digest: str = DIGEST) -> TrainResult:
    return TrainResult(ok=True, artifact_uri=artifact, artifact_digest=digest, baseline_uri=baseline, metrics={})


def test_each_build_writes_in_its_own_namespace_folder_and_may_claim_nothing_else() -> None:
    folder = "s3://models/team-a/cancer/b1"
    assert modelbuild.version_folder(BUILD) == folder
    assert modelbuild.train_config(BUILD).artifacts_folder == folder
    assert modelbuild.result_problem(BUILD, result(f"{folder}/model.bentomodel", f"{folder}/baseline.json")) is None
    for claimed in ("s3://models/team-b/cancer/b1/model.bentomodel", f"{folder}/../../team-b/x", f"{folder}x/m"):
        assert "is not inside the build's folder" in (modelbuild.result_problem(BUILD, result(claimed)) or "")
    assert "sha256 digest" in (modelbuild.result_problem(BUILD, result(f"{folder}/m", digest="md5:1")) or "")


def test_a_build_is_refused_before_any_job_outside_its_locations_or_beyond_the_jobs_size() -> None:
    assert modelbuild.spec_problem(BUILD, POLICY) is None
    elsewhere = BUILD.model_copy(deep=True)
    elsewhere.spec.artifacts.uri = "s3://other-bucket/"
    reason, message = modelbuild.spec_problem(elsewhere, POLICY) or ("", "")
    assert reason == "ArtifactsNotAllowed" and "spec.artifacts.uri" in message and "s3://models/team-a/" in message
    huge = BUILD.model_copy(deep=True)
    huge.spec.trainer.estimator.params = {"x": "y" * 300_000}  # type: ignore[union-attr]
    reason, message = modelbuild.spec_problem(huge, POLICY) or ("", "")
    assert reason == "ConfigTooLarge" and "spec.trainer.estimator.params" in message


def test_a_version_is_adopted_only_when_it_is_the_builds_own_record() -> None:
    folder = modelbuild.version_folder(BUILD)
    trained = result(f"{folder}/model.bentomodel")
    record = modelbuild.model_version(BUILD, trained, 3, "modelops:1")
    assert modelbuild.is_record_of(record, modelbuild.model_version(BUILD, trained, 3, "modelops:1"))
    approved = {**record, "spec": {**record["spec"], "approval": {"state": "Approved", "by": "alice"}}}
    assert modelbuild.is_record_of(approved, record), "an approval changes nothing of the record"
    impostor = {**record, "spec": {**record["spec"], "artifact": {"uri": "s3://x/m", "digest": DIGEST}}}
    assert not modelbuild.is_record_of(impostor, record)


def pod(name: str, **container: object) -> dict:
    return {"metadata": {"name": name}, "status": {"containerStatuses": [{"name": "server", **container}]}}


def test_a_pod_says_why_it_does_not_run() -> None:
    missing = pod(
        "t", state={"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "salt" not found'}}
    )
    assert podstate.stuck(missing) == 'CreateContainerConfigError: secret "salt" not found'
    refusing = pod(
        "s",
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"exitCode": 1, "message": "the model file at x is not the approved one"}},
    )
    assert podstate.failure([refusing]) == "pod s: the model file at x is not the approved one"
    starting = pod("r", state={"running": {}}, restartCount=0)
    assert podstate.failure([starting]) is None and podstate.stuck(starting) is None


def test_what_serves_a_version_and_when_it_is_superseded() -> None:
    status = {"servingVersion": "m-v1", "rollout": {"phase": "Progressing", "canaryVersion": "m-v2"}}
    assert versions.served(ModelDeploymentStatus.model_validate(status)) == [("m-v1", "stable"), ("m-v2", "canary")]
    rolled_back = {"servingVersion": "m-v1", "rollout": {"phase": "RolledBack", "canaryVersion": "m-v2"}}
    rolled_back_status = ModelDeploymentStatus.model_validate(rolled_back)
    assert versions.served(rolled_back_status) == [("m-v1", "stable")], "a rolled-back canary serves nothing"
    refs = [ServingRef(deployment="b", track="stable"), ServingRef(deployment="a", track="canary")] * 2
    assert [r.to_api() for r in versions.serving_refs(refs)] == [
        {"deployment": "a", "track": "canary"},
        {"deployment": "b", "track": "stable"},
    ]

    def at(number: int, stage: str) -> ModelVersion:
        spec = {"model": "m", "version": number, "task": "classification", "metrics": {}}
        spec["artifact"] = {"uri": "s3://m/x", "digest": DIGEST}
        return ModelVersion.model_validate(
            {"metadata": {"name": f"m-v{number}"}, "spec": spec, "status": {"stage": stage}}
        )

    assert versions.superseded_by(at(1, "Approved"), [at(2, "Validated")]) is None
    assert versions.superseded_by(at(1, "Approved"), [at(2, "Approved"), at(3, "Approved")]).spec.version == 3
    assert versions.superseded_by(at(3, "Approved"), [at(2, "Approved")]) is None


def test_measurements_read_one_namespace_and_one_version() -> None:
    queries = prometheus_queries(Scope("team-a", "cancer", "2"), "5m")
    assert all('namespace="team-a",model="cancer",version="2"' in q for q in queries.values()), queries
    scraped = "\n".join(
        [
            "# TYPE modelops_requests_total counter",
            'modelops_requests_total{model="cancer",version="1"} 10',
            'modelops_requests_total{model="cancer",version="2"} 3',
            "# TYPE modelops_baseline_observations gauge",
            'modelops_baseline_observations{model="cancer",version="2",feature="age",kind="numeric",bin="30.0"} 7',
            'modelops_baseline_observations{model="cancer",version="1",feature="old",kind="numeric",bin="1.0"} 1',
        ]
    )
    totals = serving_totals([scraped, scraped, "not metrics {"], version="2")
    assert totals.requests == 6, "summed over pods, this version only"
    assert totals.baseline == {"age": {"30.0": 7.0}} and totals.kinds == {"age": "numeric"}


def test_what_a_library_quotes_is_masked() -> None:
    said = redact("could not convert string to float: 'alice@example.com' (row 12345678)")
    assert said == "could not convert string to float: <redacted> (row <redacted>)"


def test_answers_larger_than_the_bound_are_refused() -> None:
    class Large(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * (3 * 2**20))

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Large)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        assert len(http.get_text(url)) == 3 * 2**20
        with pytest.raises(http.TooLarge):
            http.get_text(url, limit=2**20)
    finally:
        server.shutdown()


def test_the_webhook_condition_says_what_stops_alerts() -> None:
    from modelops.resources.alerts import webhook_condition

    assert webhook_condition(False, None, None) == (False, "NoWebhook", "no webhook is configured")
    assert webhook_condition(True, "spec.alerts.webhook.urlSecretKey: no key", None)[1] == "Unavailable"
    assert webhook_condition(True, None, "DriftDetected firing: HTTP 500 after 5 attempts")[:2] == (False, "Failed")
    assert webhook_condition(True, None, None) == (True, "Delivered", "the last delivery succeeded")
