"""The checked-in CRDs are exactly what the models generate, and are structural schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from modelops.api.crds import all_crds, file_name, render
from modelops.api.v1alpha1 import KINDS
from tests.support.paths import ROOT

CRDS = {file_name(doc): doc for doc in all_crds()}
#: Kopf's peering CRDs, copied by hand, and the admission policies that ship with the CRDs: the chart's crds/ folder
#: (which crds/ links to) holds them too.
BY_HAND = {"admission-policies.yaml"}


def test_crds_directory_matches_the_models() -> None:
    on_disk = {p.name for p in (ROOT / "crds").glob("*.yaml")} - BY_HAND
    assert on_disk == set(CRDS), "crds/ has files the models do not generate (or lacks some): run `make crds`"
    for name, document in CRDS.items():
        assert (ROOT / "crds" / name).read_text() == render(document), f"crds/{name} is stale: run `make crds`"


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def _schema(plural: str) -> dict[str, Any]:
    return CRDS[f"{plural}.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("plural", [k.crd.plural for k in KINDS])
def test_schema_is_structural(plural: str) -> None:
    for path, node in _nodes(_schema(plural)):
        assert "$ref" not in node and "title" not in node, path
        assert "anyOf" not in node or node.get("x-kubernetes-int-or-string"), f"{path}: a union is not structural"
        assert (
            node.get("type")
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), f"{path} has no type"


@pytest.mark.parametrize("plural", [k.crd.plural for k in KINDS])
def test_every_field_is_described(plural: str) -> None:
    """`kubectl explain` is the user's manual: every field of spec and status says what it is."""
    schema = _schema(plural)["properties"]
    undocumented = [
        path
        for part in ("spec", "status")
        for path, node in _nodes(schema[part], f".{part}")
        if path.count(".") > 1 and not path.endswith(("[]", "{}")) and not node.get("description")
    ]
    assert not undocumented


def test_names_columns_and_subresources() -> None:
    for kind in KINDS:
        spec = CRDS[f"{kind.crd.plural}.yaml"]["spec"]
        assert spec["names"]["categories"] == ["modelops"]
        assert spec["names"]["shortNames"] == list(kind.crd.short_names)
        version = spec["versions"][0]
        assert version["subresources"]["status"] == {}
        assert [c["name"] for c in version["additionalPrinterColumns"]][-1] == "Age"
    md = CRDS["modeldeployments.yaml"]["spec"]["versions"][0]
    assert md["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"


def test_examples_parse_with_the_models() -> None:
    by_kind = {k.crd.kind: k for k in KINDS}
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            model = by_kind[document["kind"]].model_validate(document)
            assert model.to_api()["spec"]["model" if "model" in document["spec"] else "deployment"]
