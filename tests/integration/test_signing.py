"""Signed models on the real cluster: a build signs with the key of its namespace's Secret, the model-signing
library's own verifier accepts what lies in the store, the operator serves only versions a trusted key signed over
exactly their record, and a file swapped in the store after approval is never served."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from modelops.devcluster.polling import poll
from modelops.evidence.signature import public_key_of
from tests.support.builds import BUILD, phase
from tests.support.cli import modelops
from tests.support.deployments import approve, condition, deployment, status, traffic
from tests.support.kube import Kubectl, tenant
from tests.support.operator import Operator
from tests.support.signing import private_key
from tests.support.storage import Store
from tests.support.waiting import eventually

SIGNED_FILES = ["baseline.json", "model-card.json", "model.bentomodel", "provenance.json"]


TEAM_KEY = private_key()


@pytest.fixture(scope="module")
def trusted_keys(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The folder of public keys the chart would mount: team-a's only."""
    folder = tmp_path_factory.mktemp("trusted-keys")
    (folder / "team-a.pem").write_bytes(public_key_of(TEAM_KEY))
    return str(folder)


def signed_build(kubectl: Kubectl, name: str, key: bytes = TEAM_KEY) -> dict[str, Any]:
    """A signed build of model `cancer`, its key in the namespace's Secret `signing-<name>`; the finished build."""
    secret = f"signing-{name}"
    kubectl.run("create", "secret", "generic", secret, "--from-literal=key.pem=" + key.decode())
    manifest = copy.deepcopy(BUILD)
    manifest["metadata"]["name"] = name
    manifest["spec"]["signing"] = {"keySecretRef": {"name": secret, "key": "key.pem"}}
    manifest["spec"]["modelCard"] = {"intendedUse": "Triage of biopsy reports", "limitations": ["Adults only"]}
    kubectl.apply(manifest)
    return phase(kubectl, name, timeout=300)


def check(kubectl: Kubectl, version: str) -> dict[str, Any]:
    """The version's signature check, once the operator made it."""
    checks = eventually(lambda: kubectl.get("mv", version).get("status", {}).get("checks"), what=f"{version} checked")
    return next(c for c in checks if c["name"] == "signature")


def test_a_signed_build_verifies_serves_and_a_file_swapped_after_approval_never_serves(
    kubectl: Kubectl, trusted_keys: str, audit_log: dict[str, str], operator: Operator, store: Store, tmp_path: Path
) -> None:
    first = signed_build(kubectl, "cancer-1")
    assert first["status"]["phase"] == "Succeeded", first["status"]
    record = kubectl.get("mv", "cancer-v1")["spec"]
    folder = record["artifact"]["uri"].rsplit("/", 1)[0]
    assert record["signature"]["uri"] == f"{folder}/model.sig"
    assert check(kubectl, "cancer-v1") == {
        "name": "signature",
        "passed": True,
        "message": "signed by trusted key team-a",
    }
    job = kubectl.get("job", "cancer-1-train")["spec"]["template"]["spec"]
    assert [v["secret"]["secretName"] for v in job["volumes"] if "secret" in v] == ["signing-cancer-1"]
    assert "env" not in str([e for e in job["containers"][0]["env"] if "BEGIN" in str(e)]), "the key is a file"

    # What lies in the store verifies with the library's own command, against team-a's public key.
    local = tmp_path / "cancer-1"
    local.mkdir()
    for name in [*SIGNED_FILES, "model.sig"]:
        (local / name).write_bytes(store.read(f"{folder}/{name}"))
    assert (local / "model.sig").read_text() == record["signature"]["bundle"]
    public = Path(trusted_keys) / "team-a.pem"
    verify = [sys.executable, "-m", "model_signing", "verify", "key", "--signature", str(local / "model.sig")]
    done = subprocess.run([*verify, "--public_key", str(public), str(local)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

    approve(kubectl, 1)
    kubectl.apply(deployment(replicas=1))
    eventually(lambda: status(kubectl).get("servingVersion") == "cancer-v1", timeout=180, what="v1 serving")
    eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=180, what="Ready")
    server = kubectl.get("deploy", "cancer")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["MODELOPS_SIGNATURE_BUNDLE"] == record["signature"]["bundle"]
    assert "team-a" in env["MODELOPS_TRUSTED_KEYS"]
    pods = kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"]
    logs = kubectl.run("logs", pods[0]["metadata"]["name"]).stdout
    assert "signed files match the signature of trusted key team-a" in logs

    # Its card names what the build signed (use, data and its digest, metrics) and who approved it.
    card = modelops("card", "mv/cancer-v1", "-n", kubectl.namespace, "--key", str(public))
    assert card.returncode == 0, card.stdout + card.stderr
    for said in ("Triage of biopsy reports", "Adults only", record["lineage"]["datasetDigest"], "alice"):
        assert said in card.stdout, said
    assert all(metric in card.stdout for metric in record["metrics"])
    assert "the card is the one build cancer-1 signed" in card.stdout and "verified with the given key" in card.stdout

    # A second signed version, approved; then one byte of its model changes in the store before it rolls out.
    second = signed_build(kubectl, "cancer-2")
    assert second["status"]["modelVersion"] == "cancer-v2"
    v2 = kubectl.get("mv", "cancer-v2")["spec"]["artifact"]["uri"]
    approve(kubectl, 2)
    # (approval and rollout race: the swap may land after the first pod loaded it; the next pod must refuse)
    model = bytearray(store.read(v2))
    model[len(model) // 2] ^= 1
    store.write(v2, bytes(model))
    kubectl.run("delete", "pods", "-l", "app.kubernetes.io/instance=cancer,modelops.io/version=2", check=False)
    failing = eventually(
        lambda: "not the approved one" in (c := condition(kubectl, "Stalled")).get("message", "") and c,
        timeout=240,
        what="the rollout stopped on the swapped file",
    )
    assert failing["status"] == "True" and failing["reason"] == "ServerFailing", failing
    # a rolling update replaces no pod before its successor is ready: v1's pod answers every caller
    with traffic(kubectl) as calls:
        time.sleep(3)
    assert calls.failed == 0 and calls.answered > 0 and set(calls.versions) == {"1"}, calls.failures

    # Every decision of that loop is in the audit trail, in order, the approvals naming their approver. (Causal order
    # only: the deployment may tell "Serving" a moment before the version tells "Approved", both seeing the approval.)
    expected = [
        ("ModelBuild", "cancer-1", "Trained"),
        ("ModelVersion", "cancer-v1", "Validated"),
        ("ModelVersion", "cancer-v1", "Approved"),
        ("ModelBuild", "cancer-2", "Trained"),
        ("ModelVersion", "cancer-v2", "Approved"),
    ]
    lines: list[dict[str, Any]] = []

    def complete() -> bool:
        read = modelops("audit", "md/cancer", "-n", kubectl.namespace, "--since", "1h", "-o", "json", env=audit_log)
        assert read.returncode == 0, read.stdout + read.stderr
        lines[:] = [json.loads(line) for line in read.stdout.splitlines()]
        steps = iter((line["kind"], line["name"], line["reason"]) for line in lines)
        return all(step in steps for step in expected)  # each found after the one before

    assert poll(complete, 30, 0.5), [(line["kind"], line["name"], line["reason"]) for line in lines]
    steps = [(line["kind"], line["name"], line["reason"]) for line in lines]
    assert steps.index(("ModelDeployment", "cancer", "Serving")) > steps.index(
        ("ModelVersion", "cancer-v1", "Validated")
    )
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)
    approvals = [line for line in lines if line["reason"] == "Approved"]
    assert approvals and all("approved by alice" in line["message"] for line in approvals), approvals
    assert all(line["namespace"] == kubectl.namespace and line["model"] == "cancer" for line in lines)


def test_a_version_signed_by_an_unknown_key_or_forged_by_a_tenant_never_serves(
    kubectl: Kubectl, trusted_keys: str, operator: Operator
) -> None:
    stranger = signed_build(kubectl, "cancer-1", key=private_key())
    assert stranger["status"]["phase"] == "Succeeded"
    refused = check(kubectl, "cancer-v1")
    assert not refused["passed"] and refused["message"].startswith("signed by a key that is not trusted")
    assert kubectl.get("mv", "cancer-v1")["status"]["stage"] == "Rejected"

    # mallory, a tenant, records a version of her own file under team-a's signature of another version
    ours = signed_build(kubectl, "cancer-2")
    assert ours["status"]["modelVersion"] == "cancer-v2"
    mallory = tenant(kubectl)
    forged = copy.deepcopy(kubectl.get("mv", "cancer-v2"))
    forged = {
        "apiVersion": forged["apiVersion"],
        "kind": "ModelVersion",
        "metadata": {"name": "cancer-v3", "labels": forged["metadata"]["labels"]},
        "spec": {
            **forged["spec"],
            "version": 3,
            "artifact": {**forged["spec"]["artifact"], "digest": "sha256:" + "e" * 64},
        },
    }
    forged["spec"]["approval"] = {"state": "Pending"}
    forged["metadata"]["labels"]["modelops.io/version"] = "3"
    mallory.apply(forged)
    message = check(kubectl, "cancer-v3")["message"]
    assert message.startswith("model.bentomodel was signed as sha256:") and "e" * 64 in message
    assert kubectl.get("mv", "cancer-v3")["status"]["stage"] == "Rejected"
