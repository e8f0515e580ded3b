"""What the operator remembers of its children: when a reconcile may skip a write or a read, and which watch events
wake the owner."""

from __future__ import annotations

import copy
from typing import Any

from modelops.controllers import owned
from modelops.controllers.owned import OwnedChildren
from modelops.resources.modeldeployment import server_facts

OWNER = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelDeployment",
    "name": "md",
    "uid": "u-1",
    "controller": True,
}


def manifest(image: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "md", "namespace": "ns", "labels": {"x": "1"}, "ownerReferences": [OWNER]},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": image}]}}},
    }


def on_server(body: dict[str, Any], generation: int = 1, rv: str = "10", **status: int) -> dict[str, Any]:
    """The object as the API server returns it after an apply, or as the watch brings it."""
    obj = copy.deepcopy(body)
    obj["metadata"].update(uid="d-1", generation=generation, resourceVersion=rv, managedFields=[{"big": "x" * 100}])
    obj["status"] = {"observedGeneration": generation, **status}
    return obj


def moved(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return server_facts(before) != server_facts(after)


def test_an_unchanged_child_is_not_written_again() -> None:
    children = OwnedChildren(frozenset({"Deployment"}))
    assert children.unchanged(manifest()) is None  # never applied: write it
    children.applied(manifest(), on_server(manifest()))
    standing = children.unchanged(manifest())
    assert standing is not None and standing["status"] == {"observedGeneration": 1}
    assert "managedFields" not in standing["metadata"] and "template" not in standing["spec"]
    assert children.unchanged(manifest("b")) is None  # the manifest changed


def test_a_status_write_keeps_it_standing_but_an_edit_does_not() -> None:
    children = OwnedChildren(frozenset({"Deployment"}))
    children.applied(manifest(), on_server(manifest()))
    assert children.saw("MODIFIED", on_server(manifest(), rv="11", replicas=1), moved)  # the rollout moved
    assert children.unchanged(manifest())["status"]["replicas"] == 1  # type: ignore[index]
    assert not children.saw("MODIFIED", on_server(manifest(), rv="12", replicas=1), moved)  # nothing it reads moved

    edited = on_server(manifest(), generation=2, rv="13", replicas=1)  # somebody changed its spec
    assert children.saw("MODIFIED", edited, moved)
    assert children.unchanged(manifest()) is None

    children.applied(manifest(), on_server(manifest(), generation=3, rv="14"))
    relabelled = on_server(manifest(), generation=3, rv="15")
    relabelled["metadata"]["labels"] = {}  # no generation counts labels
    assert children.saw("MODIFIED", relabelled, moved)
    assert children.unchanged(manifest()) is None


def test_a_child_removed_by_somebody_else_wakes_the_owner_and_is_written_again() -> None:
    children = OwnedChildren(frozenset({"Deployment"}))
    children.applied(manifest(), on_server(manifest()))
    assert children.saw("DELETED", on_server(manifest()), moved)
    assert children.unchanged(manifest()) is None
    assert children.known_gone(("Deployment", "ns", "md"))
    children.applied(manifest(), on_server(manifest()))  # put back
    assert not children.known_gone(("Deployment", "ns", "md"))


def test_a_removal_by_the_owner_is_not_asked_again_nor_wakes_it() -> None:
    children = OwnedChildren(frozenset({"Deployment"}))
    key = ("Deployment", "ns", "md")
    children.applied(manifest(), on_server(manifest()))
    children.gone(key)
    assert children.known_gone(key) and children.seen(key) is None  # a later write reads it afresh
    assert not children.saw("DELETED", on_server(manifest()), moved)
    assert children.saw("ADDED", on_server(manifest()), moved)  # it is back, and not by this process
    assert not children.known_gone(key)


def test_after_a_restart_every_child_wakes_its_owner_once() -> None:
    children = OwnedChildren(frozenset({"Deployment"}))
    assert children.saw("ADDED", on_server(manifest()), moved)
    assert children.seen(("Deployment", "ns", "md")) is None  # nothing kept of what this process did not apply


def test_an_unwatched_kind_is_always_written() -> None:
    children = OwnedChildren(frozenset({"Service"}))
    children.applied(manifest(), on_server(manifest()))
    assert children.unchanged(manifest()) is None


def test_what_is_known_gone_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(owned, "GONE_LIMIT", 2)
    children = OwnedChildren(frozenset())
    for name in "abc":
        children.gone(("HorizontalPodAutoscaler", "ns", name))
    assert [children.known_gone(("HorizontalPodAutoscaler", "ns", n)) for n in "abc"] == [False, True, True]


def test_the_echo_of_a_write_under_way_wakes_nobody() -> None:
    children = OwnedChildren(frozenset({"Deployment"}))
    with children.applying(("Deployment", "ns", "md")):
        assert not children.saw("ADDED", on_server(manifest()), moved)  # before the write's answer
        children.applied(manifest(), on_server(manifest()))
    assert not children.saw("ADDED", on_server(manifest()), moved)  # or after it
