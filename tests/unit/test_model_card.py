"""`modelops card`: a version's model card, rebuilt from its record, checked against the bundle its build signed
(read without a key, verified with one), with the cluster's approval and serving beside it, marked unsigned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelops import cli
from modelops.api.v1alpha1 import ModelVersion, ModelVersionStatus
from modelops.api.v1alpha1.modelversion import SignatureRef
from modelops.evidence import card, signature
from modelops.evidence.card import CARD_FILE
from modelops.resources import modelcard, trust
from tests.support import objects
from tests.support.signing import keypair

MODEL_BYTES = b"a model, as far as a signature can tell"
BASELINE_BYTES = b'{"features": {}}'
DATASET_DIGEST = "sha256:" + "d" * 64


def unsigned_record() -> ModelVersion:
    """Version 1 of `cancer` as its build recorded it, approved by alice and served by md/cancer."""
    record = objects.version(
        1,
        metrics={"accuracy": 0.9561, "f1": 0.9467},
        validation={"thresholds": [{"metric": "accuracy", "min": 0.9}, {"metric": "f1", "min": 0.8, "max": 0.99}]},
        approval={"state": "Approved", "by": "alice", "reason": "beats the champion on the March data"},
        artifact={"uri": f"{objects.FOLDER}/model.bentomodel", "digest": signature.sha256(MODEL_BYTES)},
        baselineUri=f"{objects.FOLDER}/baseline.json",
        baselineDigest=signature.sha256(BASELINE_BYTES),
        lineage={
            "build": "b1",
            "datasetUri": "sklearn://breast_cancer",
            "datasetDigest": DATASET_DIGEST,
            "estimator": "sklearn.linear_model.LogisticRegression",
            "parameters": {"C": 1.0, "max_iter": 500},
        },
        modelCard={"intendedUse": "Triage of biopsy reports for a second reading", "limitations": ["Adults only"]},
    )
    record.status = ModelVersionStatus.model_validate(
        {
            "stage": "Approved",
            "champion": "cancer-v0",
            "approvedBy": "alice",
            "approvedAt": "2026-03-02T09:30:00Z",
            "checks": [
                {"name": "threshold:accuracy", "passed": True, "message": "accuracy 0.9561 >= 0.9"},
                {"name": "champion:accuracy", "passed": True, "message": "accuracy 0.9561 vs champion cancer-v0 0.94"},
            ],
            "servedBy": [{"deployment": "cancer", "track": "stable"}],
        }
    )
    return record


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelVersion, bytes, Path]:
    """The record with the bundle its build made over its folder, the build's public key, and a scratch folder."""
    tmp = tmp_path_factory.mktemp("card")
    key, public = keypair(tmp, "team-a")
    record = unsigned_record()
    folder = tmp / "b1"
    folder.mkdir()
    (folder / "model.bentomodel").write_bytes(MODEL_BYTES)
    (folder / "baseline.json").write_bytes(BASELINE_BYTES)
    (folder / CARD_FILE).write_bytes(card.canonical(card.cyclonedx(trust.card_facts(record))))
    (folder / "provenance.json").write_text('{"_type": "https://in-toto.io/Statement/v1"}')
    bundle = signature.sign(folder, key)
    record.spec.signature = SignatureRef(uri=f"{objects.FOLDER}/model.sig", bundle=bundle)
    return record, public, tmp


def test_the_markdown_card_names_use_data_metrics_bars_and_the_approver(signed: Any) -> None:
    record, _, _ = signed
    text = modelcard.markdown(modelcard.view(record))
    assert text.startswith("# Model card: cancer v1 (team-a)\n")
    for expected in (
        "Triage of biopsy reports for a second reading",
        "- Adults only",
        "sklearn.linear_model.LogisticRegression",
        "`C=1.0`, `max_iter=500`",
        signature.sha256(MODEL_BYTES),
        "sklearn://breast_cancer",
        DATASET_DIGEST,
        "| accuracy | 0.9561 | ≥ 0.9 |",
        "| f1 | 0.9467 | ≥ 0.8 and ≤ 0.99 |",
        "## Approval and serving (from the cluster, not signed)",
        "- Stage: Approved",
        "Approved by alice at 2026-03-02T09:30:00+00:00: beats the champion on the March data",
        "- Champion it was compared with: cancer-v0",
        "passed `champion:accuracy`: accuracy 0.9561 vs champion cancer-v0 0.94",
        "- Served by: md/cancer (stable)",
    ):
        assert expected in text, expected
    signed_part, unsigned_part = text.split("## Approval and serving")
    assert "alice" not in signed_part and "alice" in unsigned_part


def test_without_a_key_the_bundle_is_read_not_verified_and_covers_exactly_the_records_card(signed: Any) -> None:
    record, _, _ = signed
    shown = modelcard.view(record)
    listed = signature.listed(record.spec.signature.bundle)
    assert shown.covered and shown.verified_key is None and not shown.verified
    assert listed[CARD_FILE] == shown.digest == trust.card_digest(record)
    assert shown.signature == (
        f"the card is the one build b1 signed (model-card.json {shown.digest}); not verified: pass --key"
    )
    assert "the card is the one build b1 signed" in modelcard.markdown(shown)
    assert json.loads(shown.content) == shown.card, "the json output is the card, as canonical bytes"

    changed = record.model_copy(deep=True)
    changed.spec.metrics = {**record.spec.metrics, "accuracy": 0.999}
    other = modelcard.view(changed)
    assert not other.covered
    assert other.signature == (
        f"the signature lists model-card.json as {shown.digest} but this record's card is {other.digest}"
        "; not verified: pass --key"
    )


def test_with_a_key_the_signature_is_verified_and_a_stranger_key_is_named_untrusted(signed: Any) -> None:
    record, public, tmp = signed
    shown = modelcard.view(record, public)
    assert shown.verified and shown.verified_key == modelcard.GIVEN_KEY
    assert shown.signature.endswith("verified with the given key")

    _, stranger = keypair(tmp, "stranger")
    refused = modelcard.view(record, stranger)
    assert not refused.verified and refused.verified_key is None and not refused.covered
    assert refused.signature.startswith("not verified: signed by a key that is not trusted")

    changed = record.model_copy(deep=True)
    changed.spec.model_card.intended_use = "Anything at all"
    recarded = modelcard.view(changed, public)
    assert recarded.verified_key == modelcard.GIVEN_KEY and not recarded.covered and not recarded.verified
    assert "but this record's card is" in recarded.signature

    assert modelcard.view(record, b"not a key").signature == "not verified: the given key is not a PEM public key"


def test_an_unsigned_or_unreadable_signature_is_said_so() -> None:
    unsigned = modelcard.view(unsigned_record())
    assert not unsigned.covered and unsigned.signature == "the version is not signed"
    assert "**Signature:** the version is not signed." in modelcard.markdown(unsigned)
    garbled = unsigned_record()
    garbled.spec.signature = SignatureRef(uri=f"{objects.FOLDER}/model.sig", bundle='{"dsseEnvelope": {}}')
    shown = modelcard.view(garbled)
    assert not shown.covered and shown.signature.startswith("the signature cannot be read: it is no model-signing")


class FakeKube:
    """The CLI's client, answering from a dict of ModelVersions."""

    namespace = objects.NAMESPACE

    def __init__(self, *versions: ModelVersion) -> None:
        self.versions = {v.metadata.name: v.model_dump(by_alias=True, mode="json") for v in versions}

    def get(self, kind: type, name: str) -> dict[str, Any] | None:
        assert kind is ModelVersion
        return self.versions.get(name)


def run(monkeypatch: pytest.MonkeyPatch, kube: FakeKube, *args: str) -> Any:
    monkeypatch.setattr(cli, "_connect", lambda *_: kube)
    return CliRunner().invoke(cli.app, ["card", *args])


def test_the_command_prints_the_signed_bytes_and_fails_when_the_key_does_not_verify(
    signed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, public, tmp = signed
    kube = FakeKube(record)
    done = run(monkeypatch, kube, "mv/cancer-v1", "-o", "json")
    assert done.exit_code == 0, done.output
    assert done.stdout.endswith("\n")
    assert signature.sha256(done.stdout[:-1].encode()) == trust.card_digest(record)

    done = run(monkeypatch, kube, "mv/cancer-v1")
    assert done.exit_code == 0 and done.stdout.startswith("# Model card: cancer v1 (team-a)")

    (tmp / "team-a.pem").write_bytes(public)
    assert run(monkeypatch, kube, "cancer-v1", "--key", str(tmp / "team-a.pem")).exit_code == 0
    _, stranger = keypair(tmp, "other")
    (tmp / "other.pem").write_bytes(stranger)
    done = run(monkeypatch, kube, "mv/cancer-v1", "--key", str(tmp / "other.pem"))
    assert done.exit_code == 1 and done.stdout.startswith("# Model card"), "the card is printed all the same"
    assert "not trusted" in done.stderr

    done = run(monkeypatch, kube, "mv/cancer-v9")
    assert done.exit_code == 1 and "'cancer-v9' not found in namespace team-a" in done.stderr
    done = run(monkeypatch, kube, "md/cancer")
    assert done.exit_code == 2 and "only a ModelVersion has a model card" in done.stderr
