"""Timers and daemons that hold no object back: none of ours puts a finalizer on what it serves.

Kopf puts a finalizer on every object a timer or daemon serves, so that it can stop them before the object goes.
Ours need no such care: each reads its object afresh, does only what the object still asks for, and leaves the
children to garbage collection (they carry owner references). A finalizer, on the other hand, keeps the object, and
its namespace, Terminating for as long as no operator removes it: after `helm uninstall`, or when a namespace's
deletion takes the operator's RoleBinding before the operator gets there.

So `without_finalizers` registers them without one. The price is that Kopf no longer learns of a deletion from a
deletion timestamp (an object without finalizers goes at once), so each timer and daemon also carries the
`while_alive` filter, which the object's DELETED event (`deleted`) turns false: Kopf then stops them as filtered out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import kopf
from kopf._core.intents.callbacks import WhenFilterFn  # Kopf's own type of `when`, not exported

from modelops.api.v1alpha1 import GROUP, VERSION

#: The memo key a deleted object's last event sets.
GONE = "gone"
#: The kinds with timers or daemons.
SPAWNING_PLURALS = ("modelbuilds", "modeldeployments", "modelmonitors")


def alive(memo: kopf.Memo) -> bool:
    """Whether the object's DELETED event is still to come."""
    return not memo.get(GONE, False)


def while_alive(when: WhenFilterFn | None = None) -> WhenFilterFn:
    """The filter of a timer or daemon (with its own condition, if any): false once the object was deleted."""

    def matches(**kwargs: Any) -> bool:
        return alive(kwargs["memo"]) and (when is None or when(**kwargs))

    return matches


@kopf.on.event(GROUP, VERSION, SPAWNING_PLURALS[0])
@kopf.on.event(GROUP, VERSION, SPAWNING_PLURALS[1])
@kopf.on.event(GROUP, VERSION, SPAWNING_PLURALS[2])
async def deleted(type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Kopf runs event handlers before it matches the filters of running timers and daemons, so they stop on this
    very event."""
    if type == "DELETED":
        memo[GONE] = True


def without_finalizers(registry: kopf.OperatorRegistry) -> None:
    """Re-register every timer and daemon as needing no finalizer: `kopf.timer` and `kopf.daemon` have no option for
    it. Kopf then also removes the finalizer an earlier version of the operator put on an object."""
    spawning = registry._spawning
    spawning._handlers = [dataclasses.replace(h, requires_finalizer=False) for h in spawning.get_all_handlers()]
