"""One reconcile at a time per object: several watchers (the object, its children, timers) may wake for it.

A lock lives while somebody holds or waits for it, and is forgotten after: a thousand deleted objects leave no
thousand locks behind."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """An object's lock (held with `with`), and how many callers wait for it."""

    __slots__ = ("__weakref__", "lock", "waiting")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = 0

    def __enter__(self) -> Turns:
        self.lock.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.lock.release()


_turns: weakref.WeakValueDictionary[tuple[str, str, str], Turns] = weakref.WeakValueDictionary()
_guard = threading.Lock()


def object_lock(kind: str, namespace: str, name: str) -> Turns:
    key = (kind, namespace, name)
    with _guard:
        turns = _turns.get(key)
        if turns is None:
            turns = _turns[key] = Turns()
        return turns


@contextmanager
def turn(kind: str, namespace: str, name: str, *, shared: bool) -> Iterator[bool]:
    """Wait for the object's lock, and hold it; yields whether this caller is to reconcile. A `shared` caller (one
    that only asks the object to be looked at again) yields False at once when another caller already waits: that
    one reads the object only once it has the lock, after whatever woke this caller, so one reconcile serves both
    (as a controller-runtime work queue holds a key once)."""
    turns = object_lock(kind, namespace, name)
    with _guard:
        if shared and turns.waiting:
            skip = True
        else:
            skip = False
            turns.waiting += 1
    if skip:
        yield False
        return
    try:
        turns.lock.acquire()
    finally:
        with _guard:
            turns.waiting -= 1
    try:
        yield True
    finally:
        turns.lock.release()
