"""kstatus conditions (`Ready`, `Reconciling`, `Stalled`), as Argo CD, Flux and `kubectl wait` read them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

State = Literal["Ready", "Reconciling", "Stalled"]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The list with one condition set; its transition time moves only when its status changes."""
    value = "True" if status else "False"
    previous = next((c for c in conditions or [] if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != value
    condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now() if changed else previous["lastTransitionTime"],  # type: ignore[index]
    }
    return [c for c in conditions or [] if c.get("type") != type_] + [condition]


def kstatus(
    conditions: list[dict[str, Any]] | None, state: State, reason: str, message: str, generation: int | None
) -> list[dict[str, Any]]:
    """Set the three standard conditions for one overall state."""
    for type_ in ("Ready", "Reconciling", "Stalled"):
        conditions = set_condition(conditions, type_, state == type_, reason, message, generation)
    return conditions or []
