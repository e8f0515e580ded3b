"""The statuses the controllers write, from their pure plans: a ModelDeployment's after a reconcile, a ModelBuild's
after a look at its Job, and what each build tells people."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.modeldeployment import Decision, HistoryEntry, RolloutStatus
from modelops.resources import modelbuild, rollout
from modelops.resources import modeldeployment as md
from modelops.resources.modelbuild import Outcome
from tests.support.objects import STARTED, build, result, version

T1 = dt.datetime(2026, 12, 1, 12, 0, 1, tzinfo=dt.UTC)

DEPLOYMENT = ModelDeployment.model_validate(
    {"metadata": {"name": "d", "namespace": "n", "generation": 4}, "spec": {"model": "cancer", "replicas": 2}}
)


def server(ready: int, replicas: int = 2) -> dict[str, Any]:
    status = {"observedGeneration": 1, "updatedReplicas": replicas, "replicas": replicas, "readyReplicas": ready}
    return {"metadata": {"generation": 1}, "spec": {"replicas": replicas}, "status": status}


CHOSEN = md.Selection(version(2, stage="Approved"), "LatestApproved", "cancer-v2 is the latest Approved version")
NONE = md.Selection(None, "NoApprovedVersion", "spec.model: cancer has no Approved version")
CANARY = RolloutStatus(
    phase="Progressing", canary_version="cancer-v3", last_decision=Decision(action="Wait", reason="measuring", time=T1)
)
ROLLED_BACK = RolloutStatus(
    phase="RolledBack",
    canary_version="cancer-v3",
    last_decision=Decision(action="RollBack", reason="too slow", time=T1),
)


@pytest.mark.parametrize(
    ("selection", "stable", "state", "servers", "problem", "expected"),
    [
        (NONE, None, RolloutStatus(phase="Stable"), [], None, ("Stalled", "NoApprovedVersion", "has no Approved")),
        (
            CHOSEN,
            2,
            RolloutStatus(phase="Stable"),
            [server(2)],
            ("ServerFailing", "pod x: crashed"),
            ("Stalled", "ServerFailing", "pod x"),
        ),
        (
            CHOSEN,
            2,
            ROLLED_BACK,
            [server(2)],
            None,
            ("Stalled", "RolledBack", "rolled back to cancer-v2 (canary cancer-v3: too slow)"),
        ),
        (
            NONE,
            2,
            RolloutStatus(phase="Stable"),
            [server(2)],
            None,
            ("Stalled", "NoApprovedVersion", "; still serving cancer-v2"),
        ),
        (CHOSEN, 2, CANARY, [server(2)], None, ("Reconciling", "CanaryProgressing", "measuring")),
        (
            CHOSEN,
            2,
            RolloutStatus(phase="Stable"),
            [server(1)],
            None,
            ("Reconciling", "Scaling", "1 of 2 replicas ready"),
        ),
        (CHOSEN, 2, RolloutStatus(phase="Stable"), [server(2)], None, ("Ready", "Serving", "serving cancer-v2")),
    ],
    ids=["nothing-to-serve", "failing", "rolled-back", "selection-lost", "canary", "scaling", "serving"],
)
def test_a_deployments_status_says_the_one_thing_that_matters_most(
    selection: md.Selection,
    stable: int | None,
    state: RolloutStatus,
    servers: list[dict[str, Any]],
    problem: tuple[str, str] | None,
    expected: tuple[str, str, str],
) -> None:
    serving: ModelVersion | None = version(stable, stage="Approved") if stable else None
    history = rollout.history_start([], "cancer-v2", "stable", T1) if stable else []
    status = md.status(DEPLOYMENT, selection, serving, state, history, servers, problem)
    true = [c for c in status.conditions or [] if c.status == "True"]
    assert [c.type for c in true] == [expected[0]], "one of Ready, Reconciling, Stalled at a time"
    assert true[0].reason == expected[1] and expected[2] in (true[0].message or "")
    assert all(c.observed_generation == 4 for c in status.conditions or [])
    assert status.serving_version == (f"cancer-v{stable}" if stable else None)
    assert status.replicas == sum(s["status"]["replicas"] for s in servers)
    assert status.history == history and status.rollout == state


def test_a_deployments_status_counts_the_replicas_of_both_tracks() -> None:
    history = [
        HistoryEntry(version="cancer-v2", started=T1),
        HistoryEntry(version="cancer-v3", track="canary", started=T1),
    ]
    status = md.status(
        DEPLOYMENT, CHOSEN, version(2, stage="Approved"), CANARY, history, [server(1, 1), server(3, 3)], None
    )
    assert (status.replicas, status.ready_replicas) == (4, 4)
    assert status.selector == "app.kubernetes.io/instance=d,app.kubernetes.io/component=server"
    assert status.endpoint == "http://d.n.svc:80"


def conditions(status: Any) -> dict[str, tuple[str, str | None]]:
    return {c.type: (c.status, c.reason) for c in status.conditions or []}


def test_a_builds_status_follows_its_job_and_keeps_what_a_later_look_does_not_say() -> None:
    running = modelbuild.status(build(), Outcome("Running", started=STARTED, job="b1-train"), None)
    assert running.phase == "Running" and conditions(running)["Reconciling"] == ("True", "Running")
    later = build().model_copy(update={"status": running})
    trained = modelbuild.status(later, Outcome("Succeeded", result=result(), job="b1-train"), "cancer-v1")
    assert trained.phase == "Succeeded" and trained.model_version == "cancer-v1"
    assert trained.start_time == running.start_time, "a start the outcome no longer says stays as it was"
    assert conditions(trained)["Ready"] == ("True", "Succeeded")
    assert conditions(trained)["PersonalDataUnprotected"] == ("False", "NoneFound")
    assert trained.failure_reason is None


@pytest.mark.parametrize(
    ("outcome", "state", "failure"),
    [
        (
            Outcome("Failed", reason="OOMKilled", message="the trainer ran out of memory"),
            ("Stalled", "OOMKilled"),
            "OOMKilled",
        ),
        (
            Outcome("Pending", reason="TrainerCannotStart", message="secret missing"),
            ("Stalled", "TrainerCannotStart"),
            None,
        ),
        (Outcome("Pending"), ("Reconciling", "Pending"), None),
    ],
    ids=["failed", "cannot-start", "waiting"],
)
def test_a_build_that_needs_a_person_is_stalled_and_says_why(
    outcome: Outcome, state: tuple[str, str], failure: str | None
) -> None:
    status = modelbuild.status(build(), outcome, None)
    assert conditions(status)[state[0]] == ("True", state[1]) and status.failure_reason == failure


def test_what_a_build_tells_people() -> None:
    exposed = result(unprotected=[{"name": "email", "looksLike": "e-mail addresses"}])
    told = modelbuild.announcements(Outcome("Succeeded", result=exposed), "cancer-v1")
    assert [(t, r) for t, r, _ in told] == [("Normal", "Trained"), ("Warning", "PersonalDataUnprotected")]
    assert "recorded ModelVersion cancer-v1 (accuracy=0.95, f1=0.94)" in told[0][2]
    assert modelbuild.announcements(Outcome("Running"), None) == [("Normal", "Training", "the training Job is running")]
    assert modelbuild.announcements(Outcome("Failed", reason="DeadlineExceeded", message="too long"), None) == [
        ("Warning", "DeadlineExceeded", "too long")
    ]
    assert modelbuild.announcements(Outcome("Pending"), None) == []
