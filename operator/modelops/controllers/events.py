"""Events: how the controllers tell people what happened (`kubectl describe`, `kubectl events`), and the audit
trail that keeps it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import kopf

from modelops.resources.audit import record as audit_record
from modelops.resources.conditions import now
from modelops.resources.events import EventType

from .audit import AUDIT


def tell(
    obj: Mapping[str, Any], type_: EventType, reason: str, message: str, audit: bool = True, model: str | None = None
) -> None:
    """An Event about `obj`, given as the API returns it (Kopf reads its apiVersion, kind, name and uid), and the
    same decision as a line of the model's audit trail (`model` for a kind that does not name it, a monitor;
    `audit=False` for a copy told on a second object)."""
    kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=message)
    line = audit_record(obj, type_, reason, message, now(), model) if audit else None
    if line is not None:
        AUDIT.append(line)
