"""What this process knows of the children it owns, so that a reconcile that changes nothing asks the API server
nothing about them (as controller-runtime's cached client does for a kubebuilder operator).

Three things, all in memory:
- the latest body of each watched child (server Deployments and Services), fed by the operator's watches;
- the manifest this process last applied to each child, and the object's mark just after (its generation for a
  kind whose status others write, else its resourceVersion);
- the children known to be gone (a removal that found nothing to remove), so it is not asked again.

A child is applied again only when its manifest changed, when its object changed since (somebody edited it: its mark
moved), or when its body is not known; a removal asks only while the child is not known to be gone. Only the leader
creates owned children and it exits when it stops leading, so what one process knows stays true until somebody else
edits or deletes a child, and that comes back by the watch and wakes the owner (`OwnedChildren.saw`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: A child: kind, namespace, name.
Key = tuple[str, str, str]

#: Children remembered as gone at most (the oldest is forgotten first: forgetting one costs one GET later).
GONE_LIMIT = 100_000


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace") or "", meta["name"]


def digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def mark(obj: dict[str, Any]) -> str:
    """What changes when somebody changes the object: its generation where the kind keeps one (a Deployment: the
    status its controller writes leaves it alone), else its resourceVersion; and its labels and owners, which no
    generation counts."""
    meta = obj["metadata"]
    generation = meta.get("generation")
    version = f"g{generation}" if generation else f"r{meta.get('resourceVersion')}"
    return f"{version}:{digest({'labels': meta.get('labels'), 'owners': meta.get('ownerReferences')})[:16]}"


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """What a reconcile reads of a child (who controls it, its replicas, its status), without its managed fields
    and template: a watched child costs a few hundred bytes."""
    meta = obj["metadata"]
    kept = (
        "name",
        "namespace",
        "uid",
        "generation",
        "resourceVersion",
        "labels",
        "ownerReferences",
        "deletionTimestamp",
    )
    body: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj["kind"],
        "metadata": {k: meta[k] for k in kept if meta.get(k) is not None},
    }
    if "replicas" in (obj.get("spec") or {}):
        body["spec"] = {"replicas": obj["spec"]["replicas"]}
    if obj.get("status"):
        body["status"] = obj["status"]
    return body


@dataclass(frozen=True)
class Applied:
    """The manifest last applied to a child (its digest), and the object just after."""

    digest: str
    uid: str
    mark: str


class OwnedChildren:
    """The operator's one record of its children (`OWNED`), shared by every handler thread."""

    def __init__(self, watched: frozenset[str]) -> None:
        self.watched = watched  # the kinds whose bodies the watches bring
        self._lock = threading.Lock()
        self._seen: dict[Key, dict[str, Any]] = {}
        self._applied: dict[Key, Applied] = {}
        self._gone: dict[Key, None] = {}  # ordered: the oldest first
        self._applying: set[Key] = set()

    @contextmanager
    def applying(self, key: Key) -> Iterator[None]:
        """While a write of the child is under way, its echo (which may come before the write's answer) wakes
        nobody: the writer reads the answer."""
        with self._lock:
            self._applying.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._applying.discard(key)

    def unchanged(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """The child as last seen, if `manifest` is what was last applied to it and nobody changed it since."""
        key = key_of(manifest)
        with self._lock:
            applied, seen = self._applied.get(key), self._seen.get(key)
        if applied is None or seen is None or applied.digest != digest(manifest):
            return None
        meta = seen["metadata"]
        if meta.get("uid") != applied.uid or mark(seen) != applied.mark or meta.get("deletionTimestamp"):
            return None
        return seen

    def seen(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self._seen.get(key)

    def applied(self, manifest: dict[str, Any], result: dict[str, Any]) -> None:
        key = key_of(manifest)
        with self._lock:
            self._gone.pop(key, None)
            if key[0] in self.watched:  # without its events, what was applied could not be known to stand
                self._applied[key] = Applied(digest(manifest), result["metadata"]["uid"], mark(result))
                self._seen[key] = slim(result)

    def known_gone(self, key: Key) -> bool:
        with self._lock:
            return key in self._gone

    def gone(self, key: Key) -> None:
        """Nothing of the owner's is left by that name (none was there, or it was deleted, or is going): a later
        write of that name reads it afresh."""
        with self._lock:
            self._applied.pop(key, None)
            self._seen.pop(key, None)
            self._remember_gone(key)

    def _remember_gone(self, key: Key) -> None:
        self._gone[key] = None
        if len(self._gone) > GONE_LIMIT:
            del self._gone[next(iter(self._gone))]

    def saw(
        self, event: str | None, obj: dict[str, Any], moved: Callable[[dict[str, Any], dict[str, Any]], bool]
    ) -> bool:
        """Record a watched child's event; whether its owner should look again: the child went (and not by the
        owner's hand), it is not known as applied (after a restart), somebody else changed it, or `moved(before,
        after)` says what the owner reads of it did; not while the owner writes it. Only the bodies of children
        this process applied are kept."""
        key = key_of(obj)
        with self._lock:
            before, applied = self._seen.get(key), self._applied.get(key)
            if event == "DELETED":
                by_owner = key in self._gone
                self._seen.pop(key, None)
                self._applied.pop(key, None)
                self._remember_gone(key)
                return not by_owner
            self._gone.pop(key, None)
            if key in self._applying:
                return False
            if applied is None:
                return True
            self._seen[key] = after = slim(obj)
        if applied.uid != after["metadata"].get("uid") or applied.mark != mark(after):
            return True
        return before is None or moved(before, after)


def never(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """For a child whose owner reads nothing of it but that it stands as applied."""
    return False
