"""The few Kubernetes API calls the controllers make, in one place: get, list, create, server-side apply,
status patches. Children are applied with one field manager, so a restart re-applies instead of duplicating.

A child is applied or deleted only when its controller owner reference names the resource's uid: a name that is
taken by anybody else's object is refused (`NotOwned`), never taken over, and the apply carries the resourceVersion
it checked, so the object cannot change hands between the check and the write."""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from modelops.api.v1alpha1 import CustomResource
from modelops.api.v1alpha1.common import StatusBase
from modelops.client import server_message

from .owned import OwnedChildren, key_of
from .settings import FIELD_MANAGER, WORKERS

#: What this process knows of its children: the kinds named here are watched (their events feed it).
OWNED = OwnedChildren(watched=frozenset({"Deployment", "Service"}))


class NotOwned(Exception):
    """A child's name is taken by an object its resource does not control."""

    def __init__(self, kind: str, name: str, holder: str) -> None:
        self.kind, self.name, self.holder = kind, name, holder
        super().__init__(
            f"{kind} {name} already exists and is not this resource's ({holder}): ModelOps never takes over an "
            "object it did not create; rename this resource, or remove that object"
        )


class NotServed(Exception):
    """The API server no longer serves a kind it served when discovered (its CRD went away)."""

    def __init__(self, api_version: str, kind: str) -> None:
        self.api_version, self.kind = api_version, kind
        super().__init__(f"the API server does not serve {kind} ({api_version})")


class Refused(Exception):
    """The API server refused a child (validation, admission, RBAC): the same request would be refused again."""

    def __init__(self, kind: str, name: str, message: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"the API server refused {kind} {name}: {message}")


#: Answers that retrying the same request cannot change.
REFUSALS = (400, 403, 422)


@functools.cache
def api_client() -> client.ApiClient:
    """The operator's one client: in a pod its service account, elsewhere the local kubeconfig."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = WORKERS  # one connection per handler thread
    return client.ApiClient(configuration)


#: The dynamic client's discovery is not thread-safe: a lookup may load a group's kinds into its cache, or rediscover
#: everything, and write the cache file, while another thread reads it (seen under chaos as KeyErrors in handlers).
_discovery = threading.RLock()


@functools.cache
def _dynamic() -> dynamic.DynamicClient:
    """The client, discovering afresh into a cache file of this process's own (the default file is shared by every
    process of the host that talks to the same server, and one may read it while another writes it)."""
    cache = Path(tempfile.mkdtemp(prefix="modelops-discovery-")) / "resources.json"
    return dynamic.DynamicClient(api_client(), cache_file=str(cache))


def resource(api_version: str, kind: str) -> Any:
    with _discovery:
        return _dynamic().resources.get(api_version=api_version, kind=kind)


def served(api_version: str, kind: str) -> bool:
    """Whether the API server serves this kind (an optional CRD, such as the Prometheus Operator's)."""
    try:
        resource(api_version, kind)
        return True
    except dynamic.exceptions.ResourceNotFoundError:
        return False


#: How long an answer of `served_lately` stands: a missing kind costs a full discovery each time it is asked.
SERVED_FOR = 60.0
_served: dict[tuple[str, str], tuple[float, bool]] = {}


def served_lately(api_version: str, kind: str) -> bool:
    """`served`, asked at most once a minute per kind: for a kind every reconcile of some resources asks about (a
    CRD installed after the operator started is seen within a minute)."""
    key, clock = (api_version, kind), time.monotonic()
    known = _served.get(key)
    if known is None or clock - known[0] > SERVED_FOR:
        known = _served[key] = (clock, served(api_version, kind))
    return known[1]


def decoded(_client: Any, answer: dict[str, Any]) -> dict[str, Any]:
    """An answer as its JSON decodes (the dynamic client's `serializer`): its own, a `ResourceInstance` turned back
    into a dict by `to_dict`, walks every answer twice more, seven times the decoding's cost."""
    return answer


def get(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return resource(api_version, kind).get(name=name, namespace=namespace, serializer=decoded)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def list_(api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    answer = resource(api_version, kind).get(namespace=namespace, label_selector=selector, serializer=decoded)
    return answer["items"]


def apply(manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply as the operator's one field manager."""
    meta = manifest["metadata"]
    try:
        return resource(manifest["apiVersion"], manifest["kind"]).server_side_apply(
            body=manifest,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            serializer=decoded,
        )
    except ApiException as error:
        if error.status in REFUSALS:
            raise Refused(manifest["kind"], meta["name"], server_message(error)) from None
        if error.status == 404 and not _still_served(manifest["apiVersion"], manifest["kind"]):
            raise NotServed(manifest["apiVersion"], manifest["kind"]) from None
        raise


def _still_served(api_version: str, kind: str) -> bool:
    """Whether the kind is served, discovered again (an apply's 404 means its kind, or its namespace, is gone)."""
    with _discovery:
        _dynamic().resources.invalidate_cache()
        _served.pop((api_version, kind), None)
        return served(api_version, kind)


def controller(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object's owner reference with `controller: true`, if it has one."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((o for o in owners if o.get("controller")), None)


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller, if it has one."""
    owner = controller(obj)
    return owner.get("uid") if owner else None


def _owner_uid(manifest: dict[str, Any]) -> str:
    uid = controller_uid(manifest)
    assert uid, f"a child manifest names its controller: {manifest['kind']} {manifest['metadata']['name']}"
    return uid


def check_owned(current: dict[str, Any] | None, kind: str, name: str, owner_uid: str) -> None:
    """Raise NotOwned unless `current` is absent or controlled by `owner_uid`."""
    if current is None or controller_uid(current) == owner_uid:
        return
    owner = controller(current)
    holder = f"it is controlled by {owner.get('kind')} {owner.get('name')}" if owner else "nothing controls it"
    raise NotOwned(kind, name, holder)


#: Reads and writes of one object (a child, or the object a reconcile acts on: `latest`) before a conflict is given
#: up to the next reconcile.
ATTEMPTS = 3


def apply_child(manifest: dict[str, Any]) -> dict[str, Any]:
    """Create or update a child of the resource named in its controller owner reference, and no other object; a
    child that stands as this manifest was last applied is not written again (`OWNED`).

    The write carries the resourceVersion that was checked (in the watched body, else read): if the object changed
    since (its controller writing its status, or somebody taking it over), the API server refuses with a conflict,
    and it is read and checked again."""
    if (standing := OWNED.unchanged(manifest)) is not None:
        return standing
    key = key_of(manifest)
    with OWNED.applying(key):
        for attempt in range(ATTEMPTS):
            try:
                result = apply(_checked(manifest, OWNED.seen(key) if attempt == 0 else None))
                OWNED.applied(manifest, result)
                return result
            except ApiException as error:
                if error.status != 409 or attempt == ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")


def _checked(manifest: dict[str, Any], seen: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest with the resourceVersion of the object it may replace, once that object is known to be ours;
    `seen`, the object as the watch last brought it, saves reading it (if it is stale, the write conflicts)."""
    meta = manifest["metadata"]
    current = seen or get(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
    check_owned(current, manifest["kind"], meta["name"], _owner_uid(manifest))
    if current is None:
        return manifest
    return {**manifest, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}


def delete_child(api_version: str, kind: str, namespace: str, name: str, owner_uid: str) -> None:
    """Delete the child if it exists and is the resource's (foreground, so its pods go with it); an object of that
    name that belongs to anybody else is left alone. The uid precondition makes the check and the delete one. Once
    nothing of the resource's is left by that name, it is not asked again (`OWNED`)."""
    key = (kind, namespace, name)
    if OWNED.known_gone(key):
        return
    current = get(api_version, kind, namespace, name)
    if (
        current is not None
        and controller_uid(current) == owner_uid
        and not current["metadata"].get("deletionTimestamp")
    ):
        try:
            resource(api_version, kind).delete(
                name=name,
                namespace=namespace,
                body={"propagationPolicy": "Foreground", "preconditions": {"uid": current["metadata"]["uid"]}},
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise
    OWNED.gone(key)


def create(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Create, or None when the name is taken (the caller decides what that means)."""
    try:
        return resource(manifest["apiVersion"], manifest["kind"]).create(
            body=manifest,
            namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            serializer=decoded,
        )
    except ApiException as error:
        if error.status == 409:
            return None
        if error.status in REFUSALS:
            raise Refused(manifest["kind"], manifest["metadata"]["name"], server_message(error)) from None
        raise


def changes(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns `previous` into `desired`, holding only what differs (a key that went away
    becomes null); empty when nothing does."""
    patch: dict[str, Any] = {key: None for key in previous if key not in desired}
    for key, value in desired.items():
        old = previous.get(key)
        if value == old:
            continue
        patch[key] = changes(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return patch


def write_status(
    obj: CustomResource, read: StatusBase | None, status: StatusBase, *, if_unchanged: bool = False
) -> dict[str, Any] | None:
    """Write what changed between the status `obj` was read with and `status`, in one merge patch, or nothing when
    nothing did; returns the object as written. Kopf's own bookkeeping (`status.kopf`) is left to Kopf. With
    `if_unchanged`, the write carries `obj`'s resourceVersion: if the object changed since it was read, the API
    server refuses it (409) and nothing is written."""
    before = {k: v for k, v in (read.to_api() if read else {}).items() if k != "kopf"}
    patch = changes(before, {k: v for k, v in status.to_api().items() if k != "kopf"})
    if not patch:
        return None
    version = obj.metadata.resource_version if if_unchanged else None
    return patch_status(obj.api_version, obj.crd.kind, obj.metadata.namespace or "", obj.metadata.name, patch, version)


def patch_status(
    api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
) -> dict[str, Any]:
    """Merge-patch the status subresource (never spec or metadata), only at `resource_version` when one is given."""
    body: dict[str, Any] = {"status": status}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return resource(api_version, kind).status.patch(
        name=name,
        namespace=namespace,
        body=body,
        content_type="application/merge-patch+json",
        field_manager=FIELD_MANAGER,
        serializer=decoded,
    )


def remove_annotations(obj: CustomResource, names: tuple[str, ...]) -> dict[str, Any] | None:
    """Merge-patch these annotations away (those absent stay absent); returns the object as written, None when none
    was there."""
    present = [n for n in names if n in (obj.metadata.annotations or {})]
    if not present:
        return None
    return resource(obj.api_version, obj.crd.kind).patch(
        name=obj.metadata.name,
        namespace=obj.metadata.namespace,
        body={"metadata": {"annotations": dict.fromkeys(present)}},
        content_type="application/merge-patch+json",
        field_manager=FIELD_MANAGER,
        serializer=decoded,
    )
