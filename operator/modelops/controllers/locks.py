"""One reconcile at a time per object: several watchers (the object, its children, timers) may wake for it."""

from __future__ import annotations

import threading
from collections import defaultdict

_locks: defaultdict[tuple[str, str, str], threading.Lock] = defaultdict(threading.Lock)


def object_lock(kind: str, namespace: str, name: str) -> threading.Lock:
    return _locks[(kind, namespace, name)]
