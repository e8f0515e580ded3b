"""Kopf's indexes as the handlers read them: kept from startup by name, and read as a copy that the event loop's
later changes do not touch."""

from __future__ import annotations

import pytest
from kopf._core.engines.indexing import Index  # Kopf's own index (its writers are internal)

from modelops.controllers import indexes


def test_startup_keeps_every_index_by_name_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexes, "INDEXES", {})  # the process's own stays as it was
    versions: Index[tuple[str, str], str] = Index()
    indexes.keep(versions_by_model=versions, retry=0, memo=object())
    assert indexes.INDEXES["versions_by_model"] is versions
    assert "retry" not in indexes.INDEXES and "memo" not in indexes.INDEXES


def test_values_are_a_copy_of_the_store_under_the_key() -> None:
    index: Index[tuple[str, str], str] = Index()
    index._replace(("team-a", "v1", "uid-1"), {("team-a", "cancer"): "v1"})
    read = indexes.values(index, ("team-a", "cancer"))
    index._replace(("team-a", "v2", "uid-2"), {("team-a", "cancer"): "v2"})
    assert read == ["v1"]
    assert sorted(indexes.values(index, ("team-a", "cancer"))) == ["v1", "v2"]
    assert indexes.values(index, ("team-b", "cancer")) == []
