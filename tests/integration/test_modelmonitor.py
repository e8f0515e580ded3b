"""ModelMonitor on real serving pods: normal traffic raises nothing; shifted traffic raises DriftDetected naming
the features, with Events, the operator's metrics and one retraining within the cooldown; the alert clears when
traffic is normal again; failing requests raise ErrorRateHigh."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from modelops.api.v1alpha1.common import ALERTS_SECRET
from modelops.devcluster.alerts import AlertReceiver
from tests.support.chaos import bring_up, take_down
from tests.support.deployments import approve, condition, deployment, traffic, version
from tests.support.kube import Kubectl
from tests.support.operator import Operator
from tests.support.prometheus import Prometheus
from tests.support.storage import STORAGE_SECRET
from tests.support.waiting import eventually

FRAME = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
NORMAL = FRAME.sample(frac=1, random_state=3).to_dict(orient="records")  # the training data, in 20-record batches
SHIFTED = (FRAME.sample(frac=1, random_state=4) * 3).to_dict(orient="records")  # every feature three times larger
BROKEN = [{"mean radius": 1.0}]  # refused with 400


@pytest.fixture
def sink() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver(refuse_first=True)
    yield receiver
    receiver.close()


def monitor() -> dict[str, Any]:
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": "watch"},
        "spec": {
            "deployment": "cancer",
            "interval": "2s",
            "window": "8s",
            "drift": {"numericMethod": "psi", "minSamples": 100, "datasetDriftShare": 0.3},
            "errorRate": {"max": 0.2, "minRequests": 20},
            "alerts": {"webhook": {"urlSecretKey": "team-hook"}},
            "retrain": {
                "enabled": True,
                "cooldown": "1h",
                "template": {
                    "model": "cancer",
                    "task": "classification",
                    "dataset": {"uri": "sklearn://breast_cancer", "target": "target"},
                    "trainer": {
                        "estimator": {
                            "className": "sklearn.linear_model.LogisticRegression",
                            "params": {"max_iter": 3000},
                        }
                    },
                    "artifacts": {"uri": "s3://modelops", "credentialsSecret": STORAGE_SECRET},
                },
            },
        },
    }


def judged(kubectl: Kubectl) -> bool:
    """Every feature has a verdict (enough samples in the window)."""
    features = kubectl.get("mm", "watch").get("status", {}).get("features") or [{"verdict": "NotEnoughData"}]
    return all(f["verdict"] != "NotEnoughData" for f in features)


def alert(kubectl: Kubectl, name: str) -> str | None:
    found = next(
        (c for c in kubectl.get("mm", "watch").get("status", {}).get("conditions", []) if c["type"] == name), None
    )
    return found["status"] if found else None


def test_drift_and_errors_are_caught_alerted_and_cleared(
    kubectl: Kubectl, sink: AlertReceiver, operator: Operator, forest: dict
) -> None:
    kubectl.run("create", "secret", "generic", ALERTS_SECRET, f"--from-literal=team-hook={sink.url}")
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=1))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="serving")
    kubectl.apply(monitor())

    with traffic(kubectl, NORMAL):
        eventually(lambda: kubectl.get("mm", "watch").get("status", {}).get("samples", 0) >= 20, what="samples")
        eventually(lambda: judged(kubectl), timeout=60, what="verdicts on normal traffic")
        assert alert(kubectl, "DriftDetected") == "False"
        assert not kubectl.get("mb", "-l", "modelops.io/monitor=watch")["items"]

    with traffic(kubectl, SHIFTED):
        eventually(lambda: alert(kubectl, "DriftDetected") == "True", timeout=60, what="DriftDetected")
        status = kubectl.get("mm", "watch")["status"]
        drifted = {f["feature"] for f in status["features"] if f["verdict"] == "Drift"}
        assert "mean radius" in drifted and len(drifted) >= 10
        worst = max((f for f in status["features"] if f["verdict"] == "Drift"), key=lambda f: f["score"])
        message = next(a for a in status["activeAlerts"] if a["name"] == "DriftDetected")["message"]
        assert f"drifted: {worst['feature']}," in message, "the alert names the most drifted features first"
        metrics = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text
        assert (
            f'modelops_monitor_alert_active{{alert="DriftDetected",monitor="watch",namespace="{kubectl.namespace}"}} 1.0'
            in metrics
        )
        assert 'modelops_monitor_drift_score{feature="mean radius"' in metrics
        eventually(lambda: kubectl.get("mb", "-l", "modelops.io/monitor=watch")["items"], what="a retrain ModelBuild")
        builds_during_drift = len(kubectl.get("mb", "-l", "modelops.io/monitor=watch")["items"])
        first_check = status["lastCheckTime"]
        eventually(lambda: kubectl.get("mm", "watch")["status"]["lastCheckTime"] != first_check, what="more checks")

    assert builds_during_drift == 1
    assert len(kubectl.get("mb", "-l", "modelops.io/monitor=watch")["items"]) == 1, "once per cooldown"
    assert kubectl.get("mm", "watch")["status"]["lastRetrain"]["build"].startswith("watch-retrain-")
    monitor_events = {
        e["reason"] for e in kubectl.get("events", "--field-selector", "involvedObject.name=watch")["items"]
    }
    deployment_events = {
        e["reason"] for e in kubectl.get("events", "--field-selector", "involvedObject.name=cancer")["items"]
    }
    assert {"DriftDetected", "Retraining"} <= monitor_events and "DriftDetected" in deployment_events

    with traffic(kubectl, NORMAL):
        eventually(lambda: alert(kubectl, "DriftDetected") == "False", timeout=60, what="drift cleared")
    assert "DriftDetectedCleared" in {
        e["reason"] for e in kubectl.get("events", "--field-selector", "involvedObject.name=watch")["items"]
    }

    with traffic(kubectl, BROKEN):
        eventually(lambda: alert(kubectl, "ErrorRateHigh") == "True", timeout=60, what="ErrorRateHigh")

    eventually(lambda: sink.statuses("DriftDetected") == ["firing", "resolved"], timeout=60, what="webhook calls")
    assert sink.refused == 1, "the first delivery failed and was retried"
    firing = next(b for b in sink.received if b["status"] == "firing")
    assert firing["version"] == "4" and firing["alerts"][0]["labels"]["monitor"] == "watch"
    assert "features drifted: " in firing["commonAnnotations"]["summary"]
    eventually(lambda: "firing" in sink.statuses("ErrorRateHigh"), timeout=60, what="ErrorRateHigh webhook")
    everything = json.dumps(kubectl.get("mm", "watch")) + json.dumps(kubectl.get("events")) + operator.log()
    assert "s3cret" not in everything, "the webhook URL leaked into status, Events or the operator's log"


def test_an_alert_waits_for_its_receiver_across_an_operator_crash(
    kubectl: Kubectl, sink: AlertReceiver, operator: Operator, forest: dict
) -> None:
    """The receiver refuses connections from before the alert until well after the operator was SIGKILLed and a new
    one started, then answers its first delivery 500: the change waits in the monitor's status meanwhile, and
    arrives once."""
    take_down(sink)
    kubectl.run("create", "secret", "generic", ALERTS_SECRET, f"--from-literal=team-hook={sink.url}")
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=1))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="serving")
    watch = monitor()
    del watch["spec"]["retrain"], watch["spec"]["drift"]
    kubectl.apply(watch)
    with traffic(kubectl, BROKEN):  # raised throughout: nothing clears it
        eventually(lambda: alert(kubectl, "ErrorRateHigh") == "True", timeout=60, what="ErrorRateHigh")
        waiting = eventually(lambda: waited(kubectl, attempts=4), timeout=60, what="4 failed attempts")
        assert [(n["alert"], n["firing"]) for n in waiting["undelivered"]] == [("ErrorRateHigh", True)]
        delivered = next(
            c for c in kubectl.get("mm", "watch")["status"]["conditions"] if c["type"] == "WebhookDelivered"
        )
        assert (delivered["status"], delivered["reason"]) == ("False", "Failed")
        assert delivered["message"].startswith("ErrorRateHigh firing: ConnectError after "), delivered["message"]

        operator.kill()
        operator.start()
        eventually(
            lambda: waited(kubectl, attempts=waiting["attempts"] + 1), timeout=120, what="the new operator trying"
        )
        bring_up(sink)
        eventually(lambda: sink.statuses("ErrorRateHigh") == ["firing"], timeout=90, what="the alert delivered")
        eventually(lambda: "webhook" not in kubectl.get("mm", "watch")["status"], what="the outbox emptied")
        time.sleep(5)  # several checks more
    assert sink.refused == 1 and sink.statuses("ErrorRateHigh") == ["firing"], "delivered once, after a 500"
    assert sink.received[0]["alerts"][0]["labels"]["monitor"] == "watch"
    assert "s3cret" not in json.dumps(kubectl.get("mm", "watch")) + operator.log()


def waited(kubectl: Kubectl, attempts: int) -> dict[str, Any] | None:
    """The monitor's webhook outbox once it has failed at least `attempts` times."""
    outbox = kubectl.get("mm", "watch").get("status", {}).get("webhook")
    return outbox if outbox and (outbox.get("attempts") or 0) >= attempts else None


def test_drift_measured_through_prometheus(
    kubectl: Kubectl, prometheus: Prometheus, operator: Operator, forest: dict
) -> None:
    kubectl.apply(version(1, forest))
    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=1))
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=120, what="serving")
    pods = kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"]
    prometheus.set_targets([f"{p['status']['podIP']}:3000" for p in pods], kubectl.namespace)
    watch = monitor()
    watch["spec"].update(source={"type": "Prometheus", "prometheusUrl": prometheus.url}, window="10s")
    del watch["spec"]["retrain"], watch["spec"]["alerts"]
    kubectl.apply(watch)

    with traffic(kubectl, NORMAL):
        eventually(lambda: judged(kubectl), timeout=60, what="verdicts on normal traffic")
        assert alert(kubectl, "DriftDetected") == "False"
    with traffic(kubectl, SHIFTED):
        eventually(lambda: alert(kubectl, "DriftDetected") == "True", timeout=90, what="DriftDetected via Prometheus")
    drifted = {f["feature"] for f in kubectl.get("mm", "watch")["status"]["features"] if f["verdict"] == "Drift"}
    assert "mean radius" in drifted

    # Prometheus down: the monitor says it cannot measure, and an outage clears no alert.
    prometheus.stop()
    with traffic(kubectl, NORMAL):
        message = eventually(lambda: stalled_for(kubectl, "MetricsUnavailable"), timeout=30, what="MetricsUnavailable")
        assert message == f"cannot query Prometheus at {prometheus.url}: ConnectError"
        time.sleep(6)  # three more checks, all without Prometheus
        assert alert(kubectl, "DriftDetected") == "True"
        assert stalled_for(kubectl, "MetricsUnavailable")
        prometheus.start()  # back, with its data: normal traffic now fills the window
        eventually(
            lambda: alert(kubectl, "DriftDetected") == "False", timeout=90, what="drift cleared after the outage"
        )
    assert condition_of(kubectl, "Ready")["status"] == "True"


def condition_of(kubectl: Kubectl, type_: str) -> dict[str, Any]:
    conditions = kubectl.get("mm", "watch").get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == type_), {})


def stalled_for(kubectl: Kubectl, reason: str) -> str | None:
    """The monitor's Stalled message while it is stalled for this reason."""
    found = condition_of(kubectl, "Stalled")
    return found["message"] if found.get("status") == "True" and found.get("reason") == reason else None


PROMETHEUS_RULE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "PrometheusRule", "plural": "prometheusrules", "singular": "prometheusrule"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


@pytest.fixture
def prometheus_rule_crd(kubectl: Kubectl) -> Iterator[None]:
    """The Prometheus Operator's PrometheusRule kind (its name and group; a permissive schema stands in for
    its full one), installed before the operator starts."""
    kubectl.apply(PROMETHEUS_RULE_CRD)
    kubectl.run("wait", "--for=condition=Established", "crd/prometheusrules.monitoring.coreos.com")
    yield
    kubectl.run("delete", "crd", "prometheusrules.monitoring.coreos.com", check=False)


def test_prometheus_rule_is_generated_and_valid(
    prometheus_rule_crd: None, kubectl: Kubectl, operator: Operator, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    import yaml

    watch = monitor()
    watch["spec"]["alerts"] = {"prometheusRule": True}
    kubectl.apply(watch)
    rule = eventually(
        lambda: json.loads(kubectl.run("get", "prometheusrule", "watch", "-o", "json", check=False).stdout or "{}"),
        what="the PrometheusRule",
    )
    assert rule["metadata"]["ownerReferences"][0]["kind"] == "ModelMonitor"
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert alerts == ["ModelOpsErrorRateHigh", "ModelOpsLatencyHigh", "ModelOpsDriftDetected"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
