"""kstatus conditions (`Ready`, `Reconciling`, `Stalled`), as Argo CD, Flux and `kubectl wait` read them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from modelops.api.v1alpha1 import Condition

State = Literal["Ready", "Reconciling", "Stalled"]


def now() -> dt.datetime:
    """The time as the API stores it (to the second, UTC)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> list[Condition]:
    """The list with one condition set; its transition time moves only when its status changes."""
    value: Literal["True", "False"] = "True" if status else "False"
    previous = next((c for c in conditions or [] if c.type == type_), None)
    since = previous.last_transition_time if previous and previous.status == value else None
    condition = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since or now(),
    )
    return [c for c in conditions or [] if c.type != type_] + [condition]


def kstatus(
    conditions: list[Condition] | None, state: State, reason: str, message: str, generation: int | None
) -> list[Condition]:
    """Set the three standard conditions for one overall state."""
    out = list(conditions or [])
    for type_ in ("Ready", "Reconciling", "Stalled"):
        out = set_condition(out, type_, state == type_, reason, message, generation)
    return out
