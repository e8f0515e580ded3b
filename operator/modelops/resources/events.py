"""What a plan tells people: Events as (type, reason, message), which the controllers post on the object."""

from __future__ import annotations

from typing import Literal

EventType = Literal["Normal", "Warning"]
Event = tuple[EventType, str, str]
