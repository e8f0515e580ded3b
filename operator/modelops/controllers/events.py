"""Events: how the controllers tell people what happened (`kubectl describe`, `kubectl events`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import kopf

from modelops.resources.events import EventType


def tell(obj: Mapping[str, Any], type_: EventType, reason: str, message: str) -> None:
    """An Event about `obj`, given as the API returns it (Kopf reads its apiVersion, kind, name and uid)."""
    kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=message)
