"""Kopf's indexes as the handlers' threads read them.

Kopf hands its indexes only to handlers, as keyword arguments; `keep` holds them from startup for code that every
handler calls (a reconcile). They are live: the event loop changes them while a handler's thread reads, so a store is
read by `values`, copied in one step (a loop over it in Python may see it change size)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar

import kopf

V = TypeVar("V")

#: Every index by its name (its function's), filled by Kopf before any handler other than startup's runs.
INDEXES: dict[str, kopf.Index[Any, Any]] = {}


@kopf.on.startup()
def keep(**kwargs: Any) -> None:
    INDEXES.update({name: value for name, value in kwargs.items() if isinstance(value, kopf.Index)})


def values(index: kopf.Index[Any, V], key: Hashable) -> list[V]:
    """The values under `key`, none when there are none."""
    return list(index.get(key, []))
