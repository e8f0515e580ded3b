"""The newest body this process knows of an object: the watch's or its own write's, by resourceVersion, and none
for an object the watch has not brought or has seen go."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
from kopf._core.engines.indexing import Index  # Kopf's own index (its writers are internal)
from kubernetes.client.rest import ApiException

from modelops.controllers import indexes, kube, latest


def body(version: str, replicas: int = 1, name: str = "md") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "team-a",
            "name": name,
            "resourceVersion": version,
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"replicas": replicas},
    }


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Index[tuple[str, str], Any]:
    index: Index[tuple[str, str], Any] = Index()
    monkeypatch.setattr(indexes, "INDEXES", {"things_bodies": index})
    return index


def things() -> latest.Latest:
    return latest.Latest("example.com/v1", "Thing", "things", registry=kopf.OperatorRegistry())


def watch(index: Index[tuple[str, str], Any], seen: dict[str, Any]) -> None:
    meta = seen["metadata"]
    index._replace((meta["namespace"], meta["name"], "uid-1"), {(meta["namespace"], meta["name"]): latest.packed(seen)})


def test_the_watched_body_is_read_without_its_managed_fields(watched: Index[tuple[str, str], Any]) -> None:
    watch(watched, body("10", replicas=2))
    got = things().get("team-a", "md")
    assert got is not None
    assert got["spec"] == {"replicas": 2}
    assert "managedFields" not in got["metadata"]


def test_the_newer_of_the_watch_and_the_own_write_wins(watched: Index[tuple[str, str], Any]) -> None:
    bodies = things()
    watch(watched, body("10", replicas=1))
    bodies.wrote(body("12", replicas=2))
    assert bodies.get("team-a", "md")["spec"]["replicas"] == 2  # type: ignore[index]
    watch(watched, body("11", replicas=3))  # an older event, still on its way when the write was answered
    assert bodies.get("team-a", "md")["spec"]["replicas"] == 2  # type: ignore[index]
    watch(watched, body("13", replicas=4))  # somebody's change after the write
    assert bodies.get("team-a", "md")["spec"]["replicas"] == 4  # type: ignore[index]
    bodies.wrote(body("12", replicas=2))  # a late answer never goes back
    assert bodies.get("team-a", "md")["spec"]["replicas"] == 4  # type: ignore[index]


def test_an_object_the_watch_has_not_brought_or_saw_go_is_not_known(watched: Index[tuple[str, str], Any]) -> None:
    bodies = things()
    bodies.wrote(body("12"))
    assert bodies.get("team-a", "md") is None  # the write's answer alone: the object may be gone
    watch(watched, body("13"))
    watched._discard(("team-a", "md", "uid-1"))
    assert bodies.get("team-a", "md") is None


@pytest.mark.parametrize("version", ["", "0", "012", "abc", "1e3", "١٢"])
def test_a_version_that_is_no_comparable_number_is_not_kept(version: str) -> None:
    assert latest.packed(body(version)) is None


def test_an_incomparable_version_in_the_watch_leaves_the_object_to_be_read(
    watched: Index[tuple[str, str], Any],
) -> None:
    watch(watched, body("abc"))
    assert things().get("team-a", "md") is None


def test_a_write_that_finds_the_object_changed_acts_again_on_it_read_afresh(
    watched: Index[tuple[str, str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    watch(watched, body("10", replicas=1))
    monkeypatch.setattr(kube, "get", lambda *_: body("11", replicas=2))
    acted: list[int] = []

    def act(found: dict[str, Any] | None) -> int:
        assert found is not None
        acted.append(found["spec"]["replicas"])
        if len(acted) == 1:
            raise ApiException(status=409)  # the status write: the object is no longer as read
        return len(acted)

    assert things().acting("team-a", "md", act) == 2
    assert acted == [1, 2]  # the watched body first, then the one read


@pytest.mark.parametrize(("status", "calls"), [(409, kube.ATTEMPTS), (500, 1)])
def test_acting_gives_up_after_a_few_conflicts_and_at_once_on_any_other_error(
    watched: Index[tuple[str, str], Any], monkeypatch: pytest.MonkeyPatch, status: int, calls: int
) -> None:
    watch(watched, body("10"))
    monkeypatch.setattr(kube, "get", lambda *_: body("11"))
    acted: list[None] = []

    def act(_: dict[str, Any] | None) -> None:
        acted.append(None)
        raise ApiException(status=status)

    with pytest.raises(ApiException):
        things().acting("team-a", "md", act)
    assert len(acted) == calls


def test_the_index_of_packed_bodies_is_registered_under_its_name() -> None:
    registry = kopf.OperatorRegistry()
    bodies = latest.Latest("example.com/v1", "Thing", "things", registry=registry)
    assert [h.id for h in registry._indexing.get_all_handlers()] == [bodies.index] == ["things_bodies"]
