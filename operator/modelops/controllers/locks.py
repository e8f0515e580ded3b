"""One reconcile at a time per object: several watchers (the object, its children, timers) may wake for it.

A lock lives while somebody holds or waits for it, and is forgotten after: a thousand deleted objects leave no
thousand locks behind."""

from __future__ import annotations

import threading
import weakref

_locks: weakref.WeakValueDictionary[tuple[str, str, str], threading.Lock] = weakref.WeakValueDictionary()
_guard = threading.Lock()


def object_lock(kind: str, namespace: str, name: str) -> threading.Lock:
    key = (kind, namespace, name)
    with _guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.Lock()
        return lock
