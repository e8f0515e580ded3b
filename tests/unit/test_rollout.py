"""The ModelDeployment's pure decisions: which version, replica split, latency quantile, and the rollout's state
machine (plan, decide) with its history. The canary's gates and step verdicts are in test_canary_gates."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.modeldeployment import HistoryEntry, Measurement, RolloutStatus
from modelops.controllers.kube import changes
from modelops.resources import modeldeployment as md
from modelops.resources import rollout
from modelops.resources.analysis import StepJudgement
from modelops.resources.measure import latency_quantile
from modelops.resources.policy import Policy


def version(number: int, stage: str | None, approval: str | None = None) -> ModelVersion:
    """A version in a stage; an Approved or Archived one was approved by an approver unless `approval` says not."""
    approval = approval or ("Approved" if stage in ("Approved", "Archived") else "Pending")
    return ModelVersion.model_validate(
        {
            "metadata": {"name": f"m-v{number}"},
            "spec": {
                "model": "m",
                "version": number,
                "task": "classification",
                "artifact": {"uri": "file:///x", "digest": "sha256:" + "0" * 64},
                "metrics": {},
                "approval": {"state": approval, "by": "alice"},
            },
            "status": {"stage": stage} if stage else None,
        }
    )


ANYWHERE = Policy()
T0, T1, T2, T3 = (dt.datetime(2026, 12, 1, 12, 0, s, tzinfo=dt.UTC) for s in range(4))
STABLE = RolloutStatus(phase="Stable")


def deployment(**spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate({"metadata": {"name": "d", "namespace": "n"}, "spec": {"model": "m", **spec}})


def test_latest_approved_is_served_and_archived_ones_are_not() -> None:
    versions = [version(1, "Archived"), version(2, "Approved"), version(3, "Validated")]
    chosen = md.select_version(deployment(), versions, ANYWHERE)
    assert chosen.version.metadata.name == "m-v2" and chosen.reason == "LatestApproved"
    assert md.select_version(deployment(), [version(1, "Validated")], ANYWHERE).reason == "NoApprovedVersion"


def test_a_pinned_version_must_be_approved() -> None:
    versions = [version(1, "Approved"), version(2, "Validated")]
    refused = md.select_version(deployment(version=2), versions, ANYWHERE)
    assert refused.version is None and "spec.version: m-v2 is Validated, not Approved" in refused.message
    assert md.select_version(deployment(version=1), versions, ANYWHERE).version.spec.version == 1
    assert md.select_version(deployment(version=9), versions, ANYWHERE).reason == "VersionNotFound"


def test_a_status_saying_approved_is_not_enough_without_an_approval() -> None:
    """Only approvers may set spec.approval (the policy); a status that says Approved, written by anybody able to
    write status, does not make a version servable on its own."""
    forged = version(2, "Approved", approval="Pending")
    assert md.select_version(deployment(version=2), [forged], ANYWHERE).reason == "VersionNotApproved"
    assert md.select_version(deployment(), [version(1, "Approved"), forged], ANYWHERE).version.metadata.name == "m-v1"


def test_a_version_stored_outside_the_namespaces_locations_never_serves() -> None:
    here = Policy(artifact_prefixes=("file:///x",))  # the helper's versions live at file:///x
    elsewhere = version(2, "Approved").model_copy(deep=True)
    elsewhere.spec.artifact.uri = "s3://other-team/m"
    assert md.select_version(deployment(), [version(1, "Approved"), elsewhere], here).version.spec.version == 1
    alone = md.select_version(deployment(), [elsewhere], here)
    assert (
        alone.reason == "ArtifactNotAllowed" and "m-v2: spec.artifact.uri s3://other-team/m is outside" in alone.message
    )
    assert md.select_version(deployment(version=2), [elsewhere], here).reason == "ArtifactNotAllowed"


@pytest.mark.parametrize(
    ("total", "weight", "expected"), [(4, 25, (3, 1)), (2, 25, (1, 1)), (10, 50, (5, 5)), (1, 10, (1, 1))]
)
def test_replica_split_keeps_a_pod_on_each_side(total: int, weight: int, expected: tuple[int, int]) -> None:
    assert md.split(total, weight) == expected


def test_latency_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert latency_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert latency_quantile(buckets, 0.7) == pytest.approx(0.1 + 0.4 * (70 - 50) / 40)
    assert latency_quantile({}, 0.9) is None


CANARY: dict[str, Any] = {
    "strategy": "Canary",
    "canary": {
        "steps": [{"weight": 25, "pause": "10s"}, {"weight": 50, "pause": "10s"}],
        "analysis": {"maxErrorRate": 0.05, "maxLatency": "200ms", "minRequests": 20},
    },
}


def test_history_closes_the_open_entry_of_a_version_and_track() -> None:
    history = rollout.history_start([], "m-v1", "stable", T1)
    history = rollout.history_start(history, "m-v2", "canary", T2)
    history = rollout.history_end(history, "m-v2", "canary", "Promoted", T3)
    history = rollout.history_end(history, "m-v1", "stable", "Replaced", T3)
    assert [(h.version, h.track, h.end_reason, h.ended) for h in history] == [
        ("m-v1", "stable", "Replaced", T3),
        ("m-v2", "canary", "Promoted", T3),
    ]
    assert [(h.version, h.track, h.end_reason) for h in history] == [
        ("m-v1", "stable", "Replaced"),
        ("m-v2", "canary", "Promoted"),
    ]


def test_a_status_patch_removes_what_went_away_and_sends_only_what_changed() -> None:
    previous = {"rollout": {"phase": "Progressing", "step": 1, "canaryVersion": "m-v2"}, "replicas": 2}
    desired = {"rollout": {"phase": "Stable"}, "replicas": 2}
    assert changes(previous, desired) == {"rollout": {"phase": "Stable", "step": None, "canaryVersion": None}}
    assert changes(desired, desired) == {}, "an unchanged status is not written"


def tracks(state: rollout.Rollout) -> list[tuple[str, str, str | None]]:
    return [(h.version, h.track, h.end_reason) for h in state.history]


def test_the_first_version_is_served_at_once() -> None:
    state = rollout.plan(deployment(rollout=CANARY), None, version(1, "Approved"), None, [], T1)
    assert state.stable.metadata.name == "m-v1" and state.canary is None
    assert state.status == STABLE and tracks(state) == [("m-v1", "stable", None)]
    assert [e[1] for e in state.events] == ["Serving"] and state.actions == []


def test_rolling_replaces_the_stable_version() -> None:
    v1, v2 = version(1, "Archived"), version(2, "Approved")
    state = rollout.plan(deployment(), v1, v2, STABLE, rollout.history_start([], "m-v1", "stable", T0), T1)
    assert state.stable is v2 and state.canary is None
    assert tracks(state) == [("m-v1", "stable", "Replaced"), ("m-v2", "stable", None)]
    assert [e[1] for e in state.events] == ["RollingUpdate"]


def test_a_canary_starts_once_then_continues() -> None:
    v1, v2 = version(1, "Archived"), version(2, "Approved")
    started = rollout.plan(deployment(rollout=CANARY), v1, v2, STABLE, [], T1)
    assert started.stable is v1 and started.canary is v2 and started.actions == ["Start"]
    assert started.status.phase == "Progressing" and started.status.step == 0
    assert [d.action for d in started.status.decisions or []] == ["Start"]
    again = rollout.plan(deployment(rollout=CANARY), v1, v2, started.status, started.history, T2)
    assert again.canary is v2 and again.events == [] and again.actions == [] and again.status == started.status


def test_a_newer_approval_replaces_the_running_canary() -> None:
    v1, v2, v3 = version(1, "Archived"), version(2, "Archived"), version(3, "Approved")
    first = rollout.plan(deployment(rollout=CANARY), v1, v2, STABLE, [], T1)
    second = rollout.plan(deployment(rollout=CANARY), v1, v3, first.status, first.history, T2)
    assert second.canary is v3 and second.status.canary_version == "m-v3"
    assert tracks(second) == [("m-v2", "canary", "Replaced"), ("m-v3", "canary", None)]


def test_the_canary_is_dropped_when_the_stable_version_is_the_target_again() -> None:
    v1, v2 = version(1, "Approved"), version(2, "Rejected")
    first = rollout.plan(deployment(rollout=CANARY), v1, v2, STABLE, [], T1)
    back = rollout.plan(deployment(rollout=CANARY), v1, v1, first.status, first.history, T2)
    assert back.canary is None and back.status.phase == "Stable"
    assert back.status.canary_version is None and back.status.step is None and back.status.step_started is None
    assert back.status.decisions == first.status.decisions, "the decision record outlives the canary"
    assert tracks(back) == [("m-v2", "canary", "Replaced")]


def test_a_rolled_back_version_is_not_retried_but_a_newer_one_is() -> None:
    v1, v2, v3 = version(1, "Archived"), version(2, "Approved"), version(3, "Approved")
    rolled_back = RolloutStatus(phase="RolledBack", canary_version="m-v2")
    assert rollout.plan(deployment(rollout=CANARY), v1, v2, rolled_back, [], T1).canary is None
    assert rollout.plan(deployment(rollout=CANARY), v1, v3, rolled_back, [], T1).canary is v3
    history = [
        HistoryEntry(version="m-v1", track="stable", started=T0),
        HistoryEntry(version="m-v2", track="canary", started=T0, ended=T1, end_reason="RolledBack"),
    ]
    again = rollout.plan(deployment(rollout=CANARY), v1, v2, rolled_back, history, T2)
    assert again.canary is None and again.status.phase == "RolledBack" and again.events == []
    newer = rollout.plan(deployment(rollout=CANARY), v1, v3, rolled_back, history, T2)
    assert newer.canary is v3 and newer.status.phase == "Progressing" and newer.actions == ["Start"]


def test_a_serving_version_that_vanished_blocks_the_rollout_instead_of_skipping_the_canary() -> None:
    """The stable version's record is gone (deleted by force) while a rolled-back canary is the latest Approved:
    before, that canary went straight into full service; now nothing is applied and the pods serve on."""
    serving = rollout.history_start([], "m-v2", "stable", T0)
    rolled_back = RolloutStatus(phase="RolledBack", canary_version="m-v3")
    state = rollout.plan(deployment(rollout=CANARY), None, version(3, "Approved"), rolled_back, serving, T1)
    assert state.blocked and state.blocked[0] == "ServingVersionMissing" and "m-v2" in state.blocked[1]
    assert state.stable is None and state.canary is None and state.events == [] and state.history == serving
    never_served = rollout.plan(deployment(rollout=CANARY), None, version(3, "Approved"), rolled_back, [], T1)
    assert never_served.blocked and never_served.blocked[0] == "RolledBack", "a rolled-back version needs a canary"


def started_canary(history: list[HistoryEntry], step: int = 0) -> rollout.Rollout:
    """m-v2 as a canary beside m-v1, at `step`."""
    v1, v2 = version(1, "Archived"), version(2, "Approved")
    started = rollout.plan(deployment(rollout=CANARY), v1, v2, STABLE, history, T1)
    return dataclasses.replace(started, status=started.status.model_copy(update={"step": step}))


ANALYSIS = deployment(rollout=CANARY).spec.rollout.canary.analysis
STEPS = len(CANARY["canary"]["steps"])


@pytest.mark.parametrize(
    ("outcome", "step", "action", "stable", "phase", "history"),
    [
        ("Pass", 0, "Advance", "m-v1", "Progressing", [("m-v2", "canary", None)]),
        (
            "Pass",
            1,
            "Promote",
            "m-v2",
            "Stable",
            [("m-v1", "stable", "Replaced"), ("m-v2", "canary", "Promoted"), ("m-v2", "stable", None)],
        ),
        ("Fail", 0, "RollBack", "m-v1", "RolledBack", [("m-v1", "stable", None), ("m-v2", "canary", "RolledBack")]),
    ],
)
def test_decide_acts_on_the_verdict(
    outcome: str, step: int, action: str, stable: str, phase: str, history: list
) -> None:
    served = rollout.history_start([], "m-v1", "stable", T0)
    started = started_canary(served if action != "Advance" else [], step)
    judgement = StepJudgement(outcome, "why", Measurement(requests=40))  # type: ignore[arg-type]
    decided = rollout.decide(started, judgement, ANALYSIS, STEPS, T2)
    assert decided.stable.metadata.name == stable and decided.status.phase == phase
    assert (decided.canary is None) == (action != "Advance")
    assert decided.actions == ["Start", action] and decided.status.last_decision.action == action
    assert [d.action for d in decided.status.decisions or []] == ["Start", action]
    assert sorted(tracks(decided), key=str) == sorted(history, key=str)
    if action == "Advance":
        assert decided.status.step == 1 and decided.status.step_started == T2
        assert decided.status.measurement == Measurement(requests=40)
        assert started.status.step == 0  # the previous state is left as it was


def test_a_wait_is_recorded_only_when_its_reason_changes() -> None:
    started = started_canary([])
    measuring = StepJudgement("Wait", "measuring", Measurement(requests=0))
    once = rollout.decide(started, measuring, ANALYSIS, STEPS, T2)
    twice = rollout.decide(once, measuring, ANALYSIS, STEPS, T3)
    assert once.actions == ["Start", "Wait"] and twice.actions == ["Start", "Wait"]
    assert twice.status.last_decision.action == "Wait" and twice.status.last_decision.time == T2
    assert [d.action for d in twice.status.decisions or []] == ["Start"], "a wait is no decision of the record"


def server(generation: int = 2, wanted: int = 2, **status: int) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": wanted}, "status": status}


@pytest.mark.parametrize(
    ("deployment_", "pending"),
    [
        (
            server(observedGeneration=1, updatedReplicas=2, replicas=2, readyReplicas=2),
            "waiting for the Deployment controller",
        ),
        (server(observedGeneration=2, updatedReplicas=1, replicas=3, readyReplicas=2), "1 of 2 replicas updated"),
        (
            server(observedGeneration=2, updatedReplicas=2, replicas=3, readyReplicas=2),
            "1 old replicas still terminating",
        ),
        (server(observedGeneration=2, updatedReplicas=2, replicas=2, readyReplicas=1), "1 of 2 replicas ready"),
        (server(observedGeneration=2, updatedReplicas=2, replicas=2, readyReplicas=2), None),
    ],
)
def test_a_server_is_rolled_out_when_every_replica_runs_the_new_template(
    deployment_: dict, pending: str | None
) -> None:
    found = md.rollout_pending(deployment_)
    assert (found is None and pending is None) or (
        found is not None and pending is not None and found.startswith(pending)
    )
