"""The trust boundary, tried as a hostile tenant would, on the real API server.

mallory may do anything with the four ModelOps kinds in her namespace, and nothing else: no Secrets, no Deployments,
Services, autoscalers, Jobs, pods or PrometheusRules. Each test is one class of what she could make the operator do
for her (issue 10), played as her (`--as=mallory`); each failed on the code before its fix.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from modelops.api.v1alpha1.common import ALERTS_SECRET
from modelops.controllers.settings import WORKERS
from modelops.devcluster.traffic import Traffic, ready_pod_addresses, service_url
from tests.support.builds import BUILD, phase
from tests.support.deployments import deployment, version
from tests.support.kube import APPROVERS, MALLORY, RESTRICTED, Kubectl, tenant
from tests.support.operator import Operator
from tests.support.paths import ROOT
from tests.support.prometheus import Prometheus
from tests.support.storage import STORAGE_SECRET, Store
from tests.support.training import customers
from tests.support.waiting import eventually

RECORDS = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(40).to_dict(orient="records")


@pytest.fixture
def mallory(kubectl: Kubectl) -> Kubectl:
    return tenant(kubectl)


@pytest.fixture
def approver(kubectl: Kubectl) -> Kubectl:
    return kubectl.as_user("alice", APPROVERS)


def watching(deployment: str, **spec: Any) -> dict[str, Any]:
    """A ModelMonitor `watch` of a deployment, checking every second over a 10 s window unless `spec` says else."""
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": "watch"},
        "spec": {"deployment": deployment, "interval": "1s", "window": "10s", **spec},
    }


def example_monitor() -> dict[str, Any]:
    """The example monitor, its retraining unsigned: the tenant role reads no signing key (a test below asks)."""
    (monitor,) = yaml.safe_load_all((ROOT / "examples" / "03-modelmonitor.yaml").read_text())
    del monitor["spec"]["retrain"]["template"]["signing"]
    return monitor


def approve(approver: Kubectl, name: str) -> None:
    patch = {"spec": {"approval": {"state": "Approved", "by": "alice", "reason": "looked fine"}}}
    approver.run("patch", "mv", name, "--type=merge", "-p", json.dumps(patch))
    eventually(lambda: approver.get("mv", name).get("status", {}).get("stage") == "Approved", what=f"{name} Approved")


def condition(kubectl: Kubectl, kind: str, name: str, type_: str) -> dict[str, Any]:
    conditions = kubectl.get(kind, name).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == type_ and c["status"] == "True"), {})


def stalled(kubectl: Kubectl, kind: str, name: str, reason: str, timeout: float = 60) -> str:
    """The message of the Stalled condition once it has this reason."""
    try:
        found = eventually(
            lambda: (c := condition(kubectl, kind, name, "Stalled")).get("reason") == reason and c,
            timeout=timeout,
            what=f"{kind} {name} Stalled with {reason}",
        )
    except AssertionError as error:
        conditions = kubectl.get(kind, name).get("status", {}).get("conditions", [])
        raise AssertionError(f"{error}; its conditions: {conditions}") from None
    return found["message"]


def ready(kubectl: Kubectl, kind: str, name: str, timeout: float = 120) -> None:
    eventually(lambda: condition(kubectl, kind, name, "Ready"), timeout=timeout, what=f"{kind} {name} Ready")


def refused(user: Kubectl, document: dict | str, *expected: str) -> None:
    done = user.apply(document, check=False)
    assert done.returncode != 0, "the API server accepted it"
    for text in expected:
        assert text in done.stderr, done.stderr


def events(kubectl: Kubectl, name: str) -> list[dict]:
    return kubectl.get("events", "--field-selector", f"involvedObject.name={name}")["items"]


def build(name: str, **spec: Any) -> dict[str, Any]:
    document = copy.deepcopy(BUILD)
    document["metadata"]["name"] = name
    document["spec"].update(spec)
    return document


def stored_customers(store: Store, namespace: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """The customers table in the team's folder of the store, and the dataset that names it."""
    local = customers(folder / "customers.csv")
    uri = store.write(store.uri(namespace, "data", "customers.csv"), local.read_bytes())
    return local, {"uri": uri, "target": "churned", "credentialsSecret": STORAGE_SECRET}


class Listener:
    """A local HTTP server that answers anything and counts what reached it: where a hostile spec points."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                listener.requests.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"status": "success", "data": {"resultType": "vector", "result": []}}')

            do_GET = do_POST = _answer

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def listener() -> Iterator[Listener]:
    served = Listener()
    yield served
    served.close()


# -- 1. confused deputy ------------------------------------------------------------------------------------------


FOREIGN_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "shop"},
    "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80}]},
}
FOREIGN_PEERS = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "api-peers"},
    "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]},
}
FOREIGN_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web-canary"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "theirs"}},
        "template": {
            "metadata": {"labels": {"app": "theirs"}},
            "spec": {"containers": [{"name": "c", "image": "theirs:1"}]},
        },
    },
}
FOREIGN_AUTOSCALER = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-canary"},
        "minReplicas": 1,
        "maxReplicas": 2,
    },
}
FOREIGN_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "b1-train"},
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "theirs:1"}]}}},
}


def test_objects_of_the_same_name_are_never_taken_over_nor_deleted(
    kubectl: Kubectl, mallory: Kubectl, approver: Kubectl, operator: Operator, forest: dict, tmp_path: Path
) -> None:
    for foreign in (FOREIGN_SERVICE, FOREIGN_PEERS, FOREIGN_DEPLOYMENT, FOREIGN_AUTOSCALER, FOREIGN_JOB):
        kubectl.apply(foreign)
    mallory.apply(version(1, forest))
    approve(approver, "cancer-v1")

    mallory.apply(deployment() | {"metadata": {"name": "shop"}})  # named like somebody's Service
    message = stalled(mallory, "md", "shop", "NameTaken")
    assert "Service shop already exists and is not this resource's" in message
    mallory.apply(deployment() | {"metadata": {"name": "api"}})  # its feedback peers' Service name is taken
    assert "Service api-peers already exists and is not this resource's" in stalled(mallory, "md", "api", "NameTaken")
    mallory.apply(deployment(replicas=1) | {"metadata": {"name": "web"}})  # its canary and autoscaler names are taken
    ready(mallory, "md", "web")
    mallory.apply(build("b1"))  # its Job's name is taken
    failed = phase(mallory, "b1")["status"]
    assert failed["phase"] == "Failed" and failed["failureReason"] == "NameTaken"

    service = kubectl.get("service", "shop")
    assert service["spec"]["selector"] == {"app": "shop"} and "ownerReferences" not in service["metadata"]
    assert kubectl.run("get", "deployment", "shop", check=False).returncode != 0, "nothing was served as shop"
    assert kubectl.run("get", "deployment", "api", check=False).returncode != 0, "nothing was served as api"
    peers = kubectl.get("service", "api-peers")
    assert peers["spec"]["selector"] == {"app": "api"} and "ownerReferences" not in peers["metadata"]
    for kind, name in (("deployment", "web-canary"), ("hpa", "web"), ("job", "b1-train")):
        kept = kubectl.get(kind, name)
        assert "ownerReferences" not in kept["metadata"], f"{kind} {name} was adopted"
    assert kubectl.get("deployment", "web-canary")["spec"]["template"]["spec"]["containers"][0]["image"] == "theirs:1"
    assert [j["metadata"]["name"] for j in kubectl.get("jobs")["items"]] == ["b1-train"]

    mallory.run("delete", "md", "shop", "api", "web", "--wait=true", "--timeout=180s")
    eventually(lambda: kubectl.run("get", "deployment", "web", check=False).returncode != 0, what="web's own gone")
    assert kubectl.get("service", "shop") and kubectl.get("hpa", "web") and kubectl.get("deployment", "web-canary")
    assert kubectl.get("service", "api-peers"), "a Service the operator does not own is never deleted"


# -- 2. the operator opens what a user names -----------------------------------------------------------------------


def test_the_operator_opens_no_file_and_no_url_a_spec_names(
    kubectl: Kubectl,
    mallory: Kubectl,
    approver: Kubectl,
    operator: Operator,
    forest: dict,
    listener: Listener,
    tmp_path: Path,
) -> None:
    # A file on the operator's machine, as its ServiceAccount token or a host file would be, shaped like a baseline.
    bait = tmp_path / "host-secret.json"
    summary = {"name": "TOPSECRET", "kind": "numeric", "edges": [1.0], "counts": [1, 1]}
    bait.write_text(json.dumps({"rows": 2, "features": [summary], "prediction": summary}))
    record = version(1, forest)
    record["spec"]["baselineUri"] = f"file://{bait}"
    mallory.apply(record)
    approve(approver, "cancer-v1")
    canary = {"strategy": "Canary", "canary": {"steps": [{"weight": 50, "pause": "1h"}]}}
    mallory.apply(deployment(replicas=1, rollout=canary, metrics={"prometheus": {"url": listener.url}}))
    message = stalled(mallory, "md", "cancer", "PrometheusNotAllowed")
    assert (
        "spec.metrics.prometheus.url: this Prometheus server is not one the operator's administrator allows" in message
    )
    monitor = watching("cancer", window="4s", source={"type": "Prometheus", "prometheusUrl": f"{listener.url}/"})
    mallory.apply(monitor)
    assert "spec.source.prometheusUrl" in stalled(mallory, "mm", "watch", "MetricsUnavailable")

    monitor["spec"]["source"] = {"type": "Pods"}  # the baseline then comes from the pods that serve the model
    mallory.apply(monitor)
    features = eventually(lambda: mallory.get("mm", "watch").get("status", {}).get("features"), what="features")
    names = {f["feature"] for f in features}
    assert "mean radius" in names and "TOPSECRET" not in names, "the operator read the file the version names"
    assert listener.requests == [], f"the operator called a URL a spec named: {listener.requests}"


# -- 3. approval is the approvers' alone ----------------------------------------------------------------------------


def test_only_an_approver_makes_a_version_servable(
    kubectl: Kubectl, mallory: Kubectl, approver: Kubectl, operator: Operator, forest: dict, tmp_path: Path
) -> None:
    self_approving = version(1, forest)
    self_approving["spec"]["validation"] = {"autoApprove": True}
    refused(mallory, self_approving, "spec.validation.autoApprove: only approvers may create a version that approves")
    refused(
        mallory,
        build("auto", approval={"mode": "AutoWhenValidated"}),
        "spec.approval.mode: only approvers may ask for AutoWhenValidated",
        f"{MALLORY} is not one",
    )
    retraining = example_monitor()
    retraining["spec"]["retrain"]["template"]["approval"] = {"mode": "AutoWhenValidated"}
    refused(mallory, retraining, "spec.retrain.template.approval.mode: only approvers may ask for AutoWhenValidated")
    kubectl.run("create", "rolebinding", "alice-tenant", "--role=modelops-tenant", "--user=alice")
    approver.apply(retraining)  # an approver may: it is her approval, given ahead of time
    mallory.run("patch", "mm", "breast-cancer", "--type=merge", "-p", '{"spec": {"interval": "20s"}}')
    swapped = {"spec": {"retrain": {"datasetUri": "file:///tmp/mallorys-own.csv"}}}
    done = mallory.run("patch", "mm", "breast-cancer", "--type=merge", "-p", json.dumps(swapped), check=False)
    assert done.returncode != 0 and "only approvers may ask for AutoWhenValidated" in done.stderr, done.stderr

    # Serving without an approver: the field for it is gone, and an unapproved version never serves.
    mallory.apply(version(1, forest))
    eventually(lambda: mallory.get("mv", "cancer-v1").get("status", {}).get("stage") == "Validated", what="Validated")
    unapproved = deployment(version=1)
    unapproved["spec"]["allowUnapproved"] = True
    done = mallory.apply(unapproved, check=False)
    if done.returncode == 0:  # the field, unknown now, was pruned: the version still does not serve
        assert "not Approved" in stalled(mallory, "md", "cancer", "VersionNotApproved")
    assert kubectl.run("get", "deployment", "cancer", check=False).returncode != 0

    # An approver records her own name, not somebody else's.
    forged = {"spec": {"approval": {"state": "Approved", "by": "the-cto", "reason": "trust me"}}}
    done = approver.run("patch", "mv", "cancer-v1", "--type=merge", "-p", json.dumps(forged), check=False)
    assert done.returncode != 0 and "spec.approval.by: must be your own user name, alice, not the-cto" in done.stderr

    # A version that carries a build's label, made before the build, is not that build's record.
    impostor = version(5, forest)
    impostor["metadata"]["name"] = "cancer-v5"
    impostor["metadata"]["labels"]["modelops.io/build"] = "cancer-1"
    mallory.apply(impostor)
    mallory.apply(build("cancer-1"))
    built = phase(mallory, "cancer-1")["status"]
    assert built["phase"] == "Succeeded" and built["modelVersion"] == "cancer-v6", built
    assert "VersionNotAdopted" in {e["reason"] for e in events(kubectl, "cancer-1")}

    # The policy behind all this ships with the CRDs: applying crds/ (as the README does) installed it.
    shipped = [d for d in yaml.safe_load_all((ROOT / "crds" / "admission-policies.yaml").read_text()) if d]
    for document in shipped:
        assert kubectl.get(document["kind"].lower(), document["metadata"]["name"])


# -- 4. tenants share no storage and no metrics ----------------------------------------------------------------------


@pytest.fixture
def neighbour(kubectl: Kubectl, store: Store) -> Iterator[Kubectl]:
    """A second team's namespace."""
    name = f"{kubectl.namespace[:50]}-b"
    admin = Kubectl(kubectl.tools)
    admin.run("create", "namespace", name)
    admin.run("label", "namespace", name, RESTRICTED)
    admin.apply(store.objects.secret_manifest(name))
    yield Kubectl(kubectl.tools, name)
    admin.run("delete", "namespace", name, "--wait=false", check=False)


def test_namespaces_share_no_storage_and_no_metrics(
    kubectl: Kubectl,
    neighbour: Kubectl,
    prometheus: Prometheus,
    forest: dict,
    store: Store,
    operator_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = {
        **operator_env,
        "MODELOPS_ARTIFACT_PREFIXES": store.uri("{namespace}") + "/",
        "MODELOPS_PROMETHEUS_URLS": prometheus.url,
    }
    watching = Operator(tmp_path / "operator.log", namespaces=[kubectl.namespace, neighbour.namespace], env=env)
    watching.start()
    try:
        _two_teams(kubectl, neighbour, prometheus, store)
    finally:
        watching.stop()


def _two_teams(team_a: Kubectl, team_b: Kubectl, prometheus: Prometheus, store: Store) -> None:
    for team in (team_a, team_b):  # the same build, model and store in both namespaces
        team.apply(build("cancer-1"))
    records = {}
    for team in (team_a, team_b):
        assert phase(team, "cancer-1")["status"]["phase"] == "Succeeded"
        records[team.namespace] = team.get("mv", "cancer-v1")["spec"]["artifact"]
    uris = {r["uri"] for r in records.values()}
    assert len(uris) == 2, "both namespaces' builds wrote the same file"
    for namespace, artifact in records.items():
        assert f"/{namespace}/cancer/cancer-1/" in artifact["uri"]
        content = store.read(artifact["uri"])
        assert f"sha256:{hashlib.sha256(content).hexdigest()}" == artifact["digest"], f"{namespace}'s was overwritten"

    # Team B serves team A's file, approved by a careless approver: outside B's artifact location, it never serves.
    theft = {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "cancer-v9", "labels": {"modelops.io/model": "cancer"}},
        "spec": {
            "model": "cancer",
            "version": 9,
            "task": "classification",
            "artifact": records[team_a.namespace],
            "metrics": {"accuracy": 0.99},
        },
    }
    team_b.apply(theft)
    approve(team_b.as_user("alice", APPROVERS), "cancer-v9")
    team_b.apply(deployment(version=9) | {"metadata": {"name": "thief"}})
    assert "is outside the artifact locations of namespace" in stalled(team_b, "md", "thief", "ArtifactNotAllowed")
    assert team_b.run("get", "deployment", "thief", check=False).returncode != 0

    # One Prometheus for both: team A's traffic must never judge team B's monitor of the same model and version.
    for team in (team_a, team_b):
        approve(team.as_user("alice", APPROVERS), "cancer-v1")
        team.apply(deployment(replicas=1))
        team.apply(watching("cancer", interval="2s", source={"type": "Prometheus", "prometheusUrl": prometheus.url}))
    ready(team_a, "md", "cancer")
    pods = team_a.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"]
    prometheus.set_targets([f"{p['status']['podIP']}:3000" for p in pods], team_a.namespace)  # only team A's pods
    with Traffic(service_url(team_a.get("service", "cancer")), RECORDS):
        eventually(lambda: (team_a.get("mm", "watch").get("status") or {}).get("samples", 0) > 0, what="A sees traffic")
    status_b = team_b.get("mm", "watch").get("status") or {}
    assert not status_b.get("samples"), "team B's monitor counted team A's requests"
    assert "baseline" in stalled(team_b, "mm", "watch", "MetricsUnavailable")

    # Had B's build overwritten A's file, A's servers would refuse it on their next start: A's deployment says so.
    store.write(records[team_a.namespace]["uri"], store.read(records[team_b.namespace]["uri"]))
    team_a.run("delete", "pods", "-l", "app.kubernetes.io/instance=cancer", "--wait=false")
    message = stalled(team_a, "md", "cancer", "ServerFailing", timeout=120)
    assert "is not the approved one" in message and records[team_a.namespace]["digest"] in message, message


# -- 5. a serving version stays -------------------------------------------------------------------------------------


def test_a_serving_version_cannot_be_deleted_nor_archived(
    kubectl: Kubectl, mallory: Kubectl, approver: Kubectl, operator: Operator, forest: dict
) -> None:
    mallory.apply(version(1, forest))
    approve(approver, "cancer-v1")
    held = {"strategy": "Canary", "canary": {"steps": [{"weight": 50, "pause": "1h"}]}}
    mallory.apply(deployment(replicas=2, rollout=held))
    ready(mallory, "md", "cancer")
    mallory.apply(version(2, forest))
    approve(approver, "cancer-v2")
    eventually(
        lambda: mallory.get("md", "cancer")["status"].get("rollout", {}).get("phase") == "Progressing", what="canary"
    )
    eventually(lambda: mallory.get("mv", "cancer-v2").get("status", {}).get("servedBy"), what="v2 served")

    for name, track in (("cancer-v1", "stable"), ("cancer-v2", "canary")):
        done = mallory.run("delete", "mv", name, check=False)
        assert done.returncode != 0, f"{name} was deleted while serving"
        assert f"serves ModelDeployment cancer ({track})" in done.stderr, done.stderr
    v1 = mallory.get("mv", "cancer-v1")["status"]
    assert v1["stage"] == "Approved", "the stable version was archived while it served"
    assert v1["servedBy"] == [{"deployment": "cancer", "track": "stable"}]

    mallory.run("delete", "md", "cancer", "--wait=false")
    archived = lambda: mallory.get("mv", "cancer-v1")["status"].get("stage") == "Archived"  # noqa: E731
    eventually(archived, timeout=180, what="v1 Archived once nothing serves it")
    eventually(lambda: mallory.run("delete", "mv", "cancer-v1", check=False).returncode == 0, what="v1 deletable")


# -- 6. secrets and personal data ------------------------------------------------------------------------------------


def test_no_secret_nor_personal_value_leaves_a_build_or_a_server(
    kubectl: Kubectl, mallory: Kubectl, approver: Kubectl, operator: Operator, store: Store, tmp_path: Path
) -> None:
    data, dataset = stored_customers(store, kubectl.namespace, tmp_path)
    trainer = {"estimator": {"className": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 3}}}
    mallory.apply(build("careless", dataset=dataset, trainer=trainer, evaluation={}))
    done = phase(mallory, "careless")["status"]
    assert done["phase"] == "Succeeded", done
    warning = condition(mallory, "mb", "careless", "PersonalDataUnprotected")
    assert "'email' (e-mail addresses)" in warning["message"] and "'customer_id' (identifiers)" in warning["message"]
    assert "spec.privacy.drop or spec.privacy.hash" in warning["message"]
    assert "PersonalDataUnprotected" in {e["reason"] for e in events(kubectl, "careless") if e["type"] == "Warning"}

    # scikit-learn quotes the value it choked on; the build says what failed, without the value.
    quoting = build("quoting", task="regression", dataset={**dataset, "target": "email"})
    quoting["spec"]["trainer"] = {"estimator": {"className": "sklearn.linear_model.LinearRegression"}}
    mallory.apply(quoting)
    assert phase(mallory, "quoting")["status"]["phase"] == "Failed"
    said = condition(mallory, "mb", "quoting", "Stalled")["message"]
    assert "could not convert string to float: <redacted>" in said, said

    # Serving the careless model: categories reach /metrics only as keyed labels.
    approve(approver, done["modelVersion"])
    mallory.apply(deployment(replicas=1))
    ready(mallory, "md", "cancer")
    (address,) = ready_pod_addresses(kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"])
    rows = [{k: v for k, v in r.items() if k != "churned"} for r in _rows(data)[:10]]
    answer = httpx.post(f"{service_url(kubectl.get('service', 'cancer'))}/predict", json={"records": rows}, timeout=30)
    assert answer.status_code == 200, answer.text
    scraped = httpx.get(f"http://{address}:3000/metrics", timeout=10).text
    assert 'feature="plan"' in scraped, "the features are counted"
    everything = scraped + json.dumps(kubectl.get("mb,mv,md", "-o", "json")) + json.dumps(kubectl.get("events"))
    for value in ("@example.org", "CUST-0", 'bin="basic"', 'bin="pro"'):
        assert value not in everything, f"{value} left the build or the server"


def _rows(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    return pd.read_csv(path).to_dict(orient="records")


# -- 7. every accepted spec works, or says why ------------------------------------------------------------------------


def test_every_accepted_spec_works_or_says_why(
    kubectl: Kubectl,
    mallory: Kubectl,
    approver: Kubectl,
    operator: Operator,
    forest: dict,
    listener: Listener,
    store: Store,
    tmp_path: Path,
) -> None:
    # A namespace developer (Kubernetes' own edit role, which holds ModelOps' user role) names a salt Secret that is
    # not there yet: the build waits, says so, and trains once the Secret exists.
    kubectl.run("create", "rolebinding", "dev-edits", "--clusterrole=edit", "--user=dev")
    dev = kubectl.as_user("dev")
    _, dataset = stored_customers(store, kubectl.namespace, tmp_path)
    private = {"hash": ["customer_id"], "drop": ["email"], "saltSecretRef": {"name": "salt", "key": "salt"}}
    dev.apply(build("salted", dataset=dataset, privacy=private))
    stalled(dev, "mb", "salted", "TrainerCannotStart")
    # The kubelet's first word can be "failed to sync secret cache"; its next attempts name the missing Secret.
    eventually(
        lambda: 'secret "salt" not found' in condition(dev, "mb", "salted", "Stalled").get("message", ""),
        timeout=120,
        what="the build to name the missing Secret",
    )
    assert dev.get("mb", "salted")["status"]["phase"] == "Pending"
    dev.run("create", "secret", "generic", "salt", f"--from-literal=salt={uuid.uuid4().hex}")
    assert phase(dev, "salted")["status"]["phase"] == "Succeeded"

    # A large parameter (150 KB) trains; one too large for the Job (250 KB) is refused, naming the field.
    dummy = "sklearn.dummy.DummyClassifier"
    for name, size in (("large", 150_000), ("huge", 250_000)):
        estimator = {"className": dummy, "params": {"strategy": "prior", "constant": "x" * size}}
        document = build(name, trainer={**BUILD["spec"]["trainer"], "estimator": estimator})
        mallory.run("create", "-f", "-", stdin=json.dumps(document))  # `apply` would copy it into an annotation
    assert phase(mallory, "large")["status"]["phase"] == "Succeeded"
    assert phase(mallory, "huge")["status"]["failureReason"] == "ConfigTooLarge"
    assert "spec.trainer.estimator.params" in condition(mallory, "mb", "huge", "Stalled")["message"]

    # A child the API server refuses (requests above limits) is a condition naming it, not a retry loop.
    mallory.apply(version(10, forest))  # the builds above recorded the first versions of the model
    approve(approver, "cancer-v10")
    impossible = {"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}
    mallory.apply(deployment(replicas=1, runtime=impossible) | {"metadata": {"name": "impossible"}})
    message = stalled(mallory, "md", "impossible", "ChildRefused")
    assert "the API server refused Deployment impossible" in message and "must be less than or equal to" in message

    # A webhook whose Secret is missing: the monitor is not Ready, and says which field to fix.
    mallory.apply(deployment(replicas=1))
    ready(mallory, "md", "cancer")
    monitor = watching("cancer", alerts={"webhook": {"urlSecretKey": "team"}})
    mallory.apply(monitor)
    message = stalled(mallory, "mm", "watch", "WebhookUnavailable")
    assert f"spec.alerts.webhook.urlSecretKey: Secret {ALERTS_SECRET} does not exist" in message
    # The namespace's owner writes a URL the administrator does not allow: said, never called, never shown.
    kubectl.run("create", "secret", "generic", ALERTS_SECRET, f"--from-literal=team={listener.url}/hook?token=t0ken")
    eventually(
        lambda: (
            "is not under a prefix the operator's administrator allows"
            in condition(mallory, "mm", "watch", "Stalled").get("message", "")
        ),
        what="the URL refused",
    )
    with Traffic(service_url(kubectl.get("service", "cancer")), [{"mean radius": 1.0}]):
        eventually(lambda: condition(mallory, "mm", "watch", "ErrorRateHigh"), what="an alert that would be sent")
    assert listener.requests == [] and "t0ken" not in json.dumps(kubectl.get("mm", "watch")) + operator.log()
    monitor["spec"]["interval"] = "0s"
    refused(mallory, monitor, "interval must be at least 1s")


# -- 8. what a build's author can do ---------------------------------------------------------------------------------


def test_a_build_cannot_borrow_rights_its_author_lacks(kubectl: Kubectl, mallory: Kubectl, tmp_path: Path) -> None:
    kubectl.run("create", "serviceaccount", "deployer")
    kubectl.run("create", "secret", "generic", "db-creds", "--from-literal=AWS_SECRET_ACCESS_KEY=x")
    as_deployer = build("borrow-sa")
    as_deployer["spec"]["trainer"] = {**as_deployer["spec"]["trainer"], "serviceAccountName": "deployer"}
    refused(mallory, as_deployer, "spec.trainer.serviceAccountName: the trainer would run as ServiceAccount deployer")
    with_secret = build("borrow-secret")
    with_secret["spec"]["dataset"] = {**with_secret["spec"]["dataset"], "credentialsSecret": "db-creds"}
    refused(
        mallory,
        with_secret,
        "spec.dataset.credentialsSecret: the trainer would read Secret db-creds, and mallory may not read it",
    )
    # The team's signing key: her trainer's code could read the mounted key and sign anything with it.
    kubectl.run("create", "secret", "generic", "model-signing", "--from-literal=key.pem=x")
    signing = build("borrow-key")
    signing["spec"]["signing"] = {"keySecretRef": {"name": "model-signing", "key": "key.pem"}}
    refused(mallory, signing, "spec.signing.keySecretRef: the trainer would read Secret model-signing, and mallory")
    retraining = example_monitor()
    retraining["spec"]["retrain"]["template"]["trainer"]["serviceAccountName"] = "deployer"
    refused(mallory, retraining, "spec.retrain.template.trainer.serviceAccountName")
    # Servers get their runtime's Secret in their environment, and may run an image of her choosing.
    serving = deployment(runtime={"credentialsSecret": "db-creds", "image": "mallory/exfiltrate:1"})
    refused(mallory, serving, "spec.runtime.credentialsSecret: the servers would read Secret db-creds")

    # Somebody who may create pods in the namespace may do all of it anyway: nothing is refused them.
    kubectl.run("create", "rolebinding", "dev-edits", "--clusterrole=edit", "--user=dev")
    for document in (as_deployer, with_secret, signing, retraining, serving):
        done = kubectl.as_user("dev").apply(document, "--dry-run=server", check=False)
        assert done.returncode == 0, done.stderr


# -- 9. the operator's threads are not hers to take ------------------------------------------------------------------


def test_many_monitors_leave_the_operator_free_for_everything_else(mallory: Kubectl, operator: Operator) -> None:
    """More monitors than the operator has handler threads: each is still checked, and her other objects, like
    anybody's, are still reconciled. (A monitor's loop used to hold a thread between its checks.)"""
    count = WORKERS + 5
    monitors = [watching("nowhere", interval="2s") | {"metadata": {"name": f"watch-{i}"}} for i in range(count)]
    mallory.apply({"apiVersion": "v1", "kind": "List", "items": monitors})
    for i in range(count):
        assert "nowhere serves no version yet" in stalled(mallory, "mm", f"watch-{i}", "NothingToWatch", timeout=120)
    mallory.apply(deployment() | {"metadata": {"name": "after"}})
    assert "has no Approved version yet" in stalled(mallory, "md", "after", "NoApprovedVersion")
