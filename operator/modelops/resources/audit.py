"""The audit trail: every decision the operator tells people (a version recorded, validated, approved or rejected
and by whom, a rollout started, advanced, promoted or rolled back, an alert raised or cleared, a retraining started)
also becomes one JSON line in a store the administrator chooses, under the model's prefix, where it outlives the
Events' hour and the statuses' bounded lists.

Each line is an object of its own (an object store cannot append), named by its time so that a listing is the
trail in order: `<audit uri>/<namespace>/<model>/<time>-<kind>-<name>-<n>.json`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .events import EventType

#: Events about the operator's own trouble, told again at each look while it lasts: not decisions.
NOT_DECISIONS = frozenset({"CheckFailed", "PrometheusRuleUnavailable", "PrometheusRuleRefused"})
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class AuditRecord(BaseModel):
    """One decision, as a line of the trail: who (the object), what (reason, message), when."""

    model_config = ConfigDict(frozen=True)

    time: dt.datetime
    namespace: str
    model: str
    kind: str
    name: str
    uid: str
    type: EventType
    reason: str
    message: str

    def line(self) -> str:
        return self.model_dump_json() + "\n"

    def key(self, sequence: int) -> str:
        """The record's object name under the model's prefix: its time first, so names sort as the trail."""
        return (
            f"{self.namespace}/{self.model}/{self.time.strftime(_TIME_FORMAT)}-{self.kind}-{self.name}-{sequence}.json"
        )


def record(
    obj: Mapping[str, Any],
    type_: EventType,
    reason: str,
    message: str,
    when: dt.datetime,
    model: str | None = None,
) -> AuditRecord | None:
    """The audit line of an Event about `obj` (as the API returns it) and its model (by default the one its spec
    names), or None when the Event is no decision or there is no model."""
    metadata, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    model = model or spec.get("model")
    if reason in NOT_DECISIONS or not isinstance(model, str):
        return None
    return AuditRecord(
        time=when.astimezone(dt.UTC),
        namespace=metadata.get("namespace") or "",
        model=model,
        kind=str(obj.get("kind") or ""),
        name=metadata.get("name") or "",
        uid=metadata.get("uid") or "",
        type=type_,
        reason=reason,
        message=message,
    )


def model_prefix(namespace: str, model: str) -> str:
    return f"{namespace}/{model}/"


def since_key(namespace: str, model: str, since: dt.datetime) -> str:
    """The name every record at or after `since` sorts after (a listing starts there)."""
    return model_prefix(namespace, model) + (since.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).strftime(
        _TIME_FORMAT
    )


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """`180d`, `12h`, `30m`, `90s` (or combined, `1d12h`) before `now`; ValueError naming the form otherwise."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 180d, 12h, 30m or 1d12h")
    return now - dt.timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


Format = Literal["text", "json"]


def shown(records: list[AuditRecord], output: Format) -> str:
    """The trail for people (one line each: time, object, reason, message) or as JSON lines."""
    if output == "json":
        return "".join(r.line() for r in records)
    return "".join(
        f"{r.time.strftime('%Y-%m-%dT%H:%M:%SZ')}  {r.kind}/{r.name}  {r.reason}: {r.message}\n" for r in records
    )
