"""The ModelDeployment's pure decisions: which version, replica split, latency quantile, canary verdicts, history."""

from __future__ import annotations

from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.controllers.kube import merge_patch
from modelops.resources import modeldeployment as md


def version(number: int, stage: str | None) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "metadata": {"name": f"m-v{number}"},
            "spec": {
                "model": "m",
                "version": number,
                "task": "classification",
                "artifact": {"uri": "file:///x", "digest": "sha256:" + "0" * 64},
                "metrics": {},
            },
            "status": {"stage": stage} if stage else None,
        }
    )


def deployment(**spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate({"metadata": {"name": "d", "namespace": "n"}, "spec": {"model": "m", **spec}})


def test_latest_approved_is_served_and_archived_ones_are_not() -> None:
    versions = [version(1, "Archived"), version(2, "Approved"), version(3, "Validated")]
    chosen = md.select_version(deployment(), versions)
    assert chosen.version.metadata.name == "m-v2" and chosen.reason == "LatestApproved"
    assert md.select_version(deployment(), [version(1, "Validated")]).reason == "NoApprovedVersion"


def test_a_pinned_version_must_be_approved_unless_allowed() -> None:
    versions = [version(1, "Approved"), version(2, "Validated")]
    refused = md.select_version(deployment(version=2), versions)
    assert refused.version is None and "spec.version: m-v2 is Validated, not Approved" in refused.message
    assert md.select_version(deployment(version=2, allowUnapproved=True), versions).version.spec.version == 2
    assert md.select_version(deployment(version=9), versions).reason == "VersionNotFound"


@pytest.mark.parametrize(
    ("total", "weight", "expected"), [(4, 25, (3, 1)), (2, 25, (1, 1)), (10, 50, (5, 5)), (1, 10, (1, 1))]
)
def test_replica_split_keeps_a_pod_on_each_side(total: int, weight: int, expected: tuple[int, int]) -> None:
    assert md.split(total, weight) == expected


def test_latency_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert md.latency_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert md.latency_quantile(buckets, 0.7) == pytest.approx(0.1 + 0.4 * (70 - 50) / 40)
    assert md.latency_quantile({}, 0.9) is None


CANARY = {
    "strategy": "Canary",
    "canary": {
        "steps": [{"weight": 25, "pause": "10s"}, {"weight": 50, "pause": "10s"}],
        "analysis": {"maxErrorRate": 0.05, "maxLatency": "200ms", "minRequests": 20},
    },
}


@pytest.mark.parametrize(
    ("step", "elapsed", "requests", "errors", "latency", "ready", "action"),
    [
        (0, 20, 100, 0, 0.05, True, "Advance"),
        (1, 20, 100, 0, 0.05, True, "Promote"),
        (0, 5, 100, 0, 0.05, True, "Wait"),  # still inside the pause
        (0, 20, 5, 0, 0.05, True, "Wait"),  # too few requests for a verdict
        (0, 5, 100, 10, 0.05, True, "RollBack"),  # errors roll back at once
        (0, 20, 100, 0, 0.5, True, "RollBack"),  # too slow
        (0, 20, 0, 0, None, False, "Wait"),  # pods not ready yet
        (0, 400, 0, 0, None, False, "RollBack"),  # never ready
    ],
)
def test_canary_verdicts(
    step: int, elapsed: float, requests: float, errors: float, latency: float | None, ready: bool, action: str
) -> None:
    verdict = md.judge(deployment(rollout=CANARY), step, elapsed, requests, errors, latency, ready, elapsed)
    assert verdict.action == action, verdict.reason


def test_history_closes_the_open_entry_of_a_version_and_track() -> None:
    history = md.history_start([], "m-v1", "stable", "t1")
    history = md.history_start(history, "m-v2", "canary", "t2")
    history = md.history_end(history, "m-v2", "canary", "Promoted", "t3")
    history = md.history_end(history, "m-v1", "stable", "Replaced", "t3")
    assert [(h["version"], h["track"], h.get("endReason")) for h in history] == [
        ("m-v1", "stable", "Replaced"),
        ("m-v2", "canary", "Promoted"),
    ]


def test_merge_patch_removes_what_went_away() -> None:
    previous = {"rollout": {"phase": "Progressing", "step": 1, "canaryVersion": "m-v2"}, "replicas": 2}
    desired = {"rollout": {"phase": "Stable"}, "replicas": 2}
    assert merge_patch(previous, desired) == {
        "rollout": {"phase": "Stable", "step": None, "canaryVersion": None},
        "replicas": 2,
    }
