"""What the model is worth, on real serving pods: records the model is unsure of raise PerformanceDegraded from the
estimate before any label exists (the webhook hears it, a retraining starts); labels posted later to either pod join
their answers on whichever pod gave them and give realized metrics equal to the test's own, which the alert then names;
and no feature value is kept or exported by a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer

from modelops.api.v1alpha1.common import ALERTS_SECRET
from modelops.devcluster.alerts import AlertReceiver
from tests.support.deployments import approve, condition, deployment, routed_url, version
from tests.support.kube import Kubectl
from tests.support.operator import Operator
from tests.support.storage import STORAGE_SECRET
from tests.support.waiting import eventually

#: A feature value seeded in one record: no file in a server pod, no scrape and no log may hold it.
SEEDED = 17.123457


def chimeras(rows: int = 150) -> tuple[list[dict[str, Any]], list[int]]:
    """Benign tumours whose every other feature is a malignant one's: a shift the forest is unsure of. Their labels
    say benign, as the test decides."""
    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns=["target"])
    malignant = features[frame.target == 0].head(rows).reset_index(drop=True)
    mixed = features[frame.target == 1].head(rows).reset_index(drop=True)
    swapped = list(features.columns)[::2]
    mixed[swapped] = malignant[swapped]
    records = mixed.to_dict(orient="records")
    records[0]["mean radius"] = SEEDED
    return records, [1] * rows


def counted(scraped: str, series: str, **labels: str) -> float:
    """A series' total in one pod's scrape, over the samples carrying `labels`."""
    return sum(
        s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == series and labels.items() <= s.labels.items()
    )


def monitor() -> dict[str, Any]:
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": "worth"},
        "spec": {
            "deployment": "cancer",
            "interval": "2s",
            "window": "10m",  # the test's whole life: its records and labels all count
            "drift": {"enabled": False},
            "performance": {"metric": "accuracy", "maxDrop": 0.1, "minRecords": 100, "minLabels": 50},
            "alerts": {"webhook": {"urlSecretKey": "team-hook"}},
            "retrain": {
                "enabled": True,
                "on": ["PerformanceDegraded"],
                "cooldown": "1h",
                "template": {
                    "model": "cancer",
                    "task": "classification",
                    "dataset": {"uri": "sklearn://breast_cancer", "target": "target"},
                    "trainer": {"estimator": {"className": "sklearn.linear_model.LogisticRegression"}},
                    "artifacts": {"uri": "s3://modelops", "credentialsSecret": STORAGE_SECRET},
                },
            },
        },
    }


def performance(kubectl: Kubectl) -> dict[str, Any]:
    return (kubectl.get("mm", "worth").get("status", {}).get("performance") or [{}])[0]


def alert(kubectl: Kubectl) -> dict[str, Any]:
    conditions = kubectl.get("mm", "worth").get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "PerformanceDegraded"), {})


@pytest.fixture
def sink() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()
    yield receiver
    receiver.close()


def test_an_unsure_model_is_degraded_by_its_estimate_then_by_the_labels_joined_on_any_pod(
    kubectl: Kubectl, sink: AlertReceiver, operator: Operator, forest: dict
) -> None:
    kubectl.run("create", "secret", "generic", ALERTS_SECRET, f"--from-literal=team-hook={sink.url}")
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=2))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="serving")
    kubectl.apply(monitor())
    url = routed_url(kubectl)

    records, labels = chimeras()
    answers = []
    with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:  # spread over pods
        for start in range(0, len(records), 10):
            answer = client.post(f"{url}/predict", json={"records": records[start : start + 10]})
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
    assert {a["version"] for a in answers} == {"1"}

    eventually(lambda: alert(kubectl).get("status") == "True", timeout=60, what="PerformanceDegraded")
    before = performance(kubectl)
    assert before["verdict"] == "Degraded" and before.get("realized") is None, "from the estimate, before any label"
    assert before["estimated"] < forest["metrics"]["accuracy"] - 0.1 and before["estimate"]["records"] == 150
    assert alert(kubectl)["message"].startswith("estimated accuracy")
    assert before["holdout"] == forest["metrics"]["accuracy"] and before["version"] == "cancer-v1"
    events = kubectl.get("events", "--field-selector", "involvedObject.name=worth")["items"]
    assert any(e["reason"] == "PerformanceDegraded" for e in events)
    eventually(lambda: "firing" in sink.statuses("PerformanceDegraded"), timeout=30, what="the webhook told")
    retrain = kubectl.get("mm", "worth")["status"]["lastRetrain"]
    assert retrain["reason"].startswith("PerformanceDegraded: estimated accuracy"), retrain
    assert kubectl.get("mb", retrain["build"])["metadata"]["labels"]["modelops.io/monitor"] == "worth"
    table = kubectl.run("get", "mm", "worth").stdout
    assert "ESTIMATED" in table and f"{before['estimated']:g}"[:4] in table

    predicted = [p for a in answers for p in a["predictions"]]
    ids = [(a["requestId"], i) for a in answers for i in range(len(a["predictions"]))]
    posted = [{"requestId": r, "index": i, "label": label} for (r, i), label in zip(ids, labels, strict=True)]
    servers = kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"]
    addresses = [f"http://{pod['status']['podIP']}:3000" for pod in servers]
    assert len(addresses) == 2
    # to each pod in turn, as the Service spreads them, but surely: 75 labels each, while a pod holds a multiple of
    # 10 answers (kube-proxy may even have sent every request to one pod), so each pod gets labels of the other's
    joined = 0
    for start in range(0, len(posted), 25):
        target = addresses[start // 25 % 2]
        answer = httpx.post(f"{target}/feedback", json={"labels": posted[start : start + 25]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["unknown"] == [] and answer.json()["rejected"] == []
        joined += answer.json()["joined"]
    assert joined == 150

    ours = sum(p == label for p, label in zip(predicted, labels, strict=True)) / len(labels)
    eventually(lambda: performance(kubectl).get("realized") is not None, timeout=60, what="realized accuracy")
    after = performance(kubectl)
    assert after["labelled"]["records"] == 150
    assert after["realized"] == round(ours, 4) and after["labelled"]["accuracy"] == round(ours, 4)
    eventually(lambda: "realized accuracy" in alert(kubectl).get("message", ""), timeout=30, what="realized alert")
    assert f"realized accuracy {ours:.3f} over 150 labels" in alert(kubectl)["message"]

    metrics = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text
    assert 'kind="estimated"' in metrics and 'kind="realized"' in metrics and 'monitor="worth"' in metrics

    seeded = str(SEEDED)
    find = (
        f"import pathlib, sys; sys.exit(any(b'{seeded}' in p.read_bytes() for p in pathlib.Path('/tmp').rglob('*') "
        "if p.is_file()))"
    )
    held, received = [], []  # per pod: labels joined to its own answers; labels posted to it (joined anywhere)
    for pod, address in zip(servers, addresses, strict=True):
        name = pod["metadata"]["name"]
        kept = kubectl.run("exec", name, "--", "python3", "-c", find, check=False)
        assert kept.returncode == 0, f"{name} keeps a feature value: {kept.stderr}"
        scraped = httpx.get(f"{address}/metrics", timeout=5).text
        assert seeded not in scraped
        assert seeded not in kubectl.run("logs", name).stdout
        held.append(counted(scraped, "modelops_labelled_records_total"))
        received.append(counted(scraped, "modelops_feedback_labels_total", outcome="joined"))
    assert sum(held) == sum(received) == 150
    assert received == [75, 75] and held != received, "each pod handed labels to the one that answered them"
