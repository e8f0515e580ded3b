"""Events: how the controllers tell people what happened (`kubectl describe`, `kubectl events`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import kopf

EventType = Literal["Normal", "Warning"]


def tell(obj: Mapping[str, Any], type_: EventType, reason: str, message: str) -> None:
    """An Event about `obj`, given as the API returns it (Kopf reads its apiVersion, kind, name and uid)."""
    kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=message)
