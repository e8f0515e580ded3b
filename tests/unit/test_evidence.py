"""Signatures, provenance and the model card, end to end without a cluster: the real trainer signs its folder with a
key, the model-signing library's own command verifies it, the operator's check of a version's record accepts it
only with a trusted key and the recorded digests, and the server's fetch refuses a file changed after signing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelBuild, ModelDeployment, ModelVersion, ModelVersionStatus
from modelops.contract.training import TERMINATION_MESSAGE_LIMIT, TrainResult, unpack
from modelops.evidence import signature
from modelops.evidence.signature import SignatureError
from modelops.resources import modelbuild, trust
from modelops.resources import modelversion as versions
from modelops.resources.modeldeployment import select_version
from modelops.resources.policy import Policy
from modelops.runtime import serve
from tests.support.signing import keypair
from tests.support.training import run_trainer

IMAGE = "registry.example/modelops@sha256:" + "a" * 64


def build(artifacts: str) -> ModelBuild:
    return ModelBuild.model_validate(
        {
            "apiVersion": "modelops.io/v1alpha1",
            "kind": "ModelBuild",
            "metadata": {"name": "b1", "namespace": "ns", "uid": "4f1c-uid", "generation": 1},
            "spec": {
                "model": "m",
                "task": "classification",
                "dataset": {"uri": "sklearn://iris", "target": "target"},
                # a float that is a whole number: the API server gives it back as 1, the card must not change
                "trainer": {
                    "estimator": {"className": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0}}
                },
                "evaluation": {
                    "testSize": 0.5,
                    "thresholds": [{"metric": "accuracy", "min": 0.8}],
                    "slices": [
                        {"name": "long-petals", "column": "petal length (cm)", "min": 2.5},
                        {"name": "nobody", "column": "petal length (cm)", "values": ["no such length"]},
                    ],
                },
                "artifacts": {"uri": artifacts},
                "signing": {"keySecretRef": {"name": "signing", "key": "key.pem"}},
                "modelCard": {"intendedUse": "Sorting iris flowers", "limitations": ["Three species only"]},
            },
        }
    )


def as_the_api_server_returns_it(body: dict[str, Any]) -> ModelVersion:
    """The record as read back: Go writes a whole float as an integer."""

    def go(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: go(v) for k, v in value.items()}
        if isinstance(value, list):
            return [go(v) for v in value]
        return value

    return ModelVersion.model_validate(go(json.loads(json.dumps(body))))


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult, ModelVersion, dict[str, bytes]]:
    """One signed build: its folder, the trainer's result, the version recorded from it, and the trusted key."""
    tmp = tmp_path_factory.mktemp("signed")
    key, public = keypair(tmp, "team-a")
    made = build(f"file://{tmp}/artifacts")
    config = modelbuild.train_config(made, IMAGE).model_dump(by_alias=True, exclude_none=True)
    code, result, logged = run_trainer(tmp, config, signing_key=key)
    assert code == 0, result.error
    assert "BEGIN" not in logged, "the key is never logged"
    record = as_the_api_server_returns_it(modelbuild.model_version(made, result, 1, IMAGE))
    return tmp / "artifacts" / "ns" / "m" / "b1", result, record, {"team-a": public}


def test_the_trainer_signs_model_baseline_card_and_provenance_and_the_library_verifies_them(signed: Any) -> None:
    folder, result, record, trusted = signed
    assert sorted(p.name for p in folder.iterdir()) == [
        "baseline.json",
        "model-card.json",
        "model.bentomodel",
        "model.sig",
        "provenance.json",
    ]
    assert len(result.to_message().encode()) <= TERMINATION_MESSAGE_LIMIT
    assert result.features, "the bundle leaves room for the features in the message"
    assert (folder / "model.sig").read_text() == unpack(result.signature or "") == record.spec.signature.bundle
    public = folder.parent / "public.pem"
    public.write_bytes(trusted["team-a"])
    verify = [sys.executable, "-m", "model_signing", "verify", "key", "--signature", str(folder / "model.sig")]
    done = subprocess.run([*verify, "--public_key", str(public), str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (folder.parent / "model.bentomodel.orig").write_bytes((folder / "model.bentomodel").read_bytes())
    with (folder / "model.bentomodel").open("r+b") as model:  # one byte changed
        model.seek(100)
        byte = model.read(1)
        model.seek(100)
        model.write(bytes([byte[0] ^ 1]))
    done = subprocess.run([*verify, "--public_key", str(public), str(folder)], capture_output=True, text=True)
    assert done.returncode != 0 and "model.bentomodel" in done.stdout + done.stderr
    (folder / "model.bentomodel").write_bytes((folder.parent / "model.bentomodel.orig").read_bytes())


def test_the_provenance_names_model_dataset_trainer_build_and_builder(signed: Any) -> None:
    folder, result, record, _ = signed
    statement = json.loads((folder / "provenance.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [
        {"name": "model.bentomodel", "digest": {"sha256": result.artifact_digest.removeprefix("sha256:")}}
    ]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["modelBuild"] == {"namespace": "ns", "name": "b1", "uid": "4f1c-uid"}
    assert definition["externalParameters"]["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert definition["externalParameters"]["parameters"] == {"C": 1.0}
    dataset, trainer = definition["resolvedDependencies"]
    assert dataset["uri"] == "sklearn://iris"
    assert dataset["digest"] == {"modelopsRowsSha256": result.dataset_digest.removeprefix("sha256:")}
    assert trainer == {"name": "trainer", "uri": f"oci://{IMAGE}", "digest": {"sha256": "a" * 64}}
    assert statement["predicate"]["runDetails"]["builder"]["id"].startswith("https://modelops.io/operator@")
    assert record.spec.lineage and record.spec.lineage.build_uid == "4f1c-uid"


def test_the_signed_card_is_the_one_the_record_rebuilds(signed: Any) -> None:
    folder, result, record, _ = signed
    card = json.loads((folder / "model-card.json").read_text())
    assert card["bomFormat"] == "CycloneDX" and card["specVersion"] == "1.6"
    model, dataset = card["components"]
    assert model["type"] == "machine-learning-model" and model["hashes"][0]["content"] in result.artifact_digest
    assert model["modelCard"]["considerations"] == {
        "useCases": ["Sorting iris flowers"],
        "technicalLimitations": ["Three species only"],
    }
    reported = model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    measured = {m["type"]: float(m["value"]) for m in reported if m["slice"] == "holdout"}
    assert measured == result.metrics
    assert {"name": "modelops:threshold:accuracy", "value": "min 0.8"} in model["properties"]
    assert dataset["hashes"][0]["content"] in result.dataset_digest
    assert signature.sha256((folder / "model-card.json").read_bytes()) == trust.card_digest(record)
    by_slice = {(m["slice"], m["type"]) for m in model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]}
    assert ("long-petals", "accuracy") in by_slice and not any(part == "nobody" for part, _ in by_slice)
    assert record.spec.slice_metrics == result.slice_metrics
    assert result.slice_metrics and result.slice_metrics["nobody"] == {}, "too few rows: no metric"
    assert set(result.slice_metrics["long-petals"]) <= set(result.metrics)
    assert {"accuracy", "f1"} <= set(result.slice_metrics["long-petals"])


def test_a_version_serves_only_when_a_trusted_key_signed_exactly_its_record(signed: Any, tmp_path: Path) -> None:
    _, _, record, trusted = signed
    _, stranger = keypair(tmp_path, "stranger")
    assert trust.problem(record, Policy(trusted_keys=tuple(trusted.items()))) is None
    check = versions.signature_check(record, Policy(trusted_keys=tuple(trusted.items())))
    assert check.passed and check.message == "signed by trusted key team-a"

    untrusted = trust.problem(record, Policy(trusted_keys=(("other", stranger),)))
    assert untrusted and untrusted.startswith("m-v1: signed by a key that is not trusted") and "other" in untrusted
    swapped = record.model_copy(deep=True)
    swapped.spec.artifact.digest = "sha256:" + "0" * 64
    assert trust.problem(swapped, Policy(trusted_keys=tuple(trusted.items()))) == (
        f"m-v1: model.bentomodel was signed as {record.spec.artifact.digest}, the version records sha256:{'0' * 64}"
    )
    recarded = record.model_copy(deep=True)
    recarded.spec.metrics = {**record.spec.metrics, "accuracy": 0.999}
    assert "model-card.json was signed as" in (
        trust.problem(recarded, Policy(trusted_keys=tuple(trusted.items()))) or ""
    )
    forged = record.model_copy(deep=True)
    bundle = json.loads(record.spec.signature.bundle)
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = bundle["dsseEnvelope"]["signatures"][0]["sig"][:-8] + "AAAAAAA="
    forged.spec.signature.bundle = json.dumps(bundle)
    assert "does not verify against trusted key team-a" in (
        trust.problem(forged, Policy(trusted_keys=tuple(trusted.items()))) or ""
    )


def test_unsigned_versions_serve_only_where_no_key_is_trusted_or_the_administrator_allows_them(signed: Any) -> None:
    _, _, record, trusted = signed
    unsigned = record.model_copy(deep=True)
    unsigned.spec.signature = None
    keys = tuple(trusted.items())
    assert trust.problem(unsigned, Policy()) is None
    assert trust.problem(unsigned, Policy(trusted_keys=keys)) == (
        "m-v1: it is not signed (the chart's signing.allowUnsigned is off)"
    )
    assert trust.problem(unsigned, Policy(trusted_keys=keys, allow_unsigned=True)) is None
    assert trust.problem(unsigned, Policy(allow_unsigned=False)) is not None
    assert not versions.signature_check(unsigned, Policy(trusted_keys=keys)).passed


def test_the_server_loads_only_files_that_match_the_trusted_signature(
    signed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    folder, result, record, trusted = signed
    bundle = record.spec.signature.bundle
    uri, digest = result.artifact_uri or "", result.artifact_digest or ""
    assert serve.fetch(uri, digest, bundle, trusted).tag
    _, stranger = keypair(tmp_path, "stranger")
    with pytest.raises(SignatureError, match="not trusted"):
        serve.fetch(uri, digest, bundle, {"stranger": stranger})
    card = folder / "model-card.json"
    original = card.read_bytes()
    card.write_bytes(original.replace(b"Sorting iris flowers", b"Sorting iris flowerz"))
    try:
        with pytest.raises(SignatureError, match=r"model-card\.json"):
            serve.fetch(uri, digest, bundle, trusted)
    finally:
        card.write_bytes(original)


def test_a_rollout_takes_only_versions_a_trusted_key_signed_and_says_why_it_takes_none(signed: Any) -> None:
    """Keys trusted after a version was approved: it serves no more, and the deployment names it and the reason."""
    _, _, record, trusted = signed
    keys = Policy(trusted_keys=tuple(trusted.items()))
    approved = record.model_copy(deep=True)
    approved.spec.approval = approved.spec.approval.model_copy(update={"state": "Approved", "by": "alice"})
    approved.status = ModelVersionStatus(stage="Approved")
    unsigned = approved.model_copy(deep=True)
    unsigned.spec.signature, unsigned.spec.version, unsigned.metadata.name = None, 2, "m-v2"
    md = ModelDeployment.model_validate({"metadata": {"name": "m", "namespace": "ns"}, "spec": {"model": "m"}})

    assert select_version(md, [approved, unsigned], Policy()).version is unsigned, "no key trusted: the latest"
    chosen = select_version(md, [approved, unsigned], keys)
    assert chosen.version is approved and chosen.reason == "LatestApproved"
    refused = select_version(md, [unsigned], keys)
    assert refused.version is None and refused.reason == "SignatureNotTrusted"
    assert refused.message == "m-v2: it is not signed (the chart's signing.allowUnsigned is off): it never serves"
    pinned = ModelDeployment.model_validate(
        {"metadata": {"name": "m", "namespace": "ns"}, "spec": {"model": "m", "version": 2}}
    )
    assert select_version(pinned, [approved, unsigned], keys).message.startswith("spec.version: m-v2: it is not signed")


def test_a_versions_checks_include_its_signature_once_signing_is_in_play(signed: Any) -> None:
    _, _, record, trusted = signed
    unsigned = record.model_copy(deep=True)
    unsigned.spec.signature = None

    def signature_checks(version: ModelVersion, policy: Policy) -> list[tuple[bool, str]]:
        return [(c.passed, c.message) for c in versions.checks(version, None, policy) if c.name == "signature"]

    assert signature_checks(unsigned, Policy()) == [], "no key, no signature, nothing asked: no check"
    assert signature_checks(unsigned, Policy(allow_unsigned=False)) == [
        (False, "it is not signed (the chart's signing.allowUnsigned is off)")
    ]
    assert signature_checks(record, Policy()) == [(True, "signed; not verified, since no key is trusted")]
    assert signature_checks(record, Policy(trusted_keys=tuple(trusted.items()))) == [
        (True, "signed by trusted key team-a")
    ]


def test_the_lineage_says_who_signed_the_version_and_where_its_provenance_lies(signed: Any) -> None:
    from rich.console import Console

    from modelops import lineage_tree
    from modelops.resources.lineage import version_lineage

    _, _, record, trusted = signed
    judged = record.model_copy(deep=True)
    judged.status = ModelVersionStatus(
        checks=versions.checks(record, None, Policy(trusted_keys=tuple(trusted.items())))
    )
    seen = version_lineage(judged, None)
    assert seen.signature == "signed by trusted key team-a"
    assert seen.provenance_uri and seen.provenance_uri.endswith("/ns/m/b1/provenance.json")
    out = Console(width=300, record=True)
    out.print(lineage_tree._version_tree(seen))
    text = out.export_text()
    assert "signature: signed by trusted key team-a" in text and "provenance: file://" in text


def test_the_operator_reads_its_trusted_keys_and_will_not_start_on_one_that_is_no_key(tmp_path: Path) -> None:
    from modelops.controllers.config import trusted_keys

    _, public = keypair(tmp_path, "team-a")
    (tmp_path / "team-a.pem").write_bytes(public)
    (tmp_path / "broken.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    with pytest.raises(SystemExit, match=r"signing\.trustedKeys\.broken: not a PEM public key"):
        trusted_keys(str(tmp_path))
    (tmp_path / "broken.pem").unlink()
    assert trusted_keys(str(tmp_path)) == (("team-a", public),)
    assert trusted_keys("") == () and trusted_keys(str(tmp_path / "absent")) == ()
