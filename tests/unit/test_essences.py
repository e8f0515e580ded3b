"""The operator builds Kopf's essence of an object (what a change is told by) from its parts, as Kopf would from the
whole body."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest

from modelops.controllers.settings import Essences

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "md-1-stable",
        "namespace": "team-a",
        "uid": "uid-1",
        "resourceVersion": "42",
        "labels": {"app": "md-1"},
        "annotations": {
            "deployment.kubernetes.io/revision": "1",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "other-operator.example/last-handled-configuration": "{}",
        },
        "managedFields": [{"manager": "modelops", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
        "ownerReferences": [{"kind": "ModelDeployment", "name": "md-1", "controller": True}],
    },
    "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "server", "image": "modelops:1"}]}}},
    "status": {"replicas": 1, "kopf": {"diffbase": "{}"}},
}


def whole(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, raw))


@pytest.mark.parametrize(
    "body",
    [
        DEPLOYMENT,
        {**DEPLOYMENT, "metadata": {"name": "bare"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {}}, "data": {"k": "v"}},
    ],
)
def test_the_essence_is_kopfs_own(body: dict[str, Any]) -> None:
    ours = Essences(field="status.kopf.diffbase").build(body=whole(body))
    kopfs = kopf.StatusDiffBaseStorage(field="status.kopf.diffbase").build(body=whole(body))
    assert ours == kopfs


def test_extra_fields_are_picked_from_the_whole_body_the_status_too() -> None:
    ours = Essences(field="status.kopf.diffbase").build(body=whole(DEPLOYMENT), extra_fields=["status.replicas"])
    assert dict(ours)["status"] == {"replicas": 1}


def test_the_essence_is_a_copy() -> None:
    essence = Essences(field="status.kopf.diffbase").build(body=whole(DEPLOYMENT))
    spec = cast(dict[str, Any], dict(essence)["spec"])
    spec["replicas"] = 5
    assert DEPLOYMENT["spec"]["replicas"] == 1
