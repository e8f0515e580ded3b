"""A ModelVersion's checks (its thresholds, the champion), its stage, what serves it and what supersedes it."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelDeploymentStatus
from modelops.api.v1alpha1.modelversion import MAX_SERVED_BY, CheckResult, ServingRef
from modelops.resources import modelversion as rules
from tests.support.objects import version

PASSED = CheckResult(name="threshold:accuracy", passed=True, message="accuracy 0.95 meets >= 0.9")
MISSED = CheckResult(name="threshold:accuracy", passed=False, message="accuracy 0.85 misses >= 0.9")
BEHIND = CheckResult(name="champion:accuracy", passed=False, message="accuracy 0.85 vs champion cancer-v1 0.9 (...)")


def bars(*thresholds: dict[str, Any], **policy: Any) -> dict[str, Any]:
    return {"thresholds": list(thresholds), **policy}


# -- thresholds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "bar", "passed", "message"),
    [
        ({"accuracy": 0.95}, {"metric": "accuracy", "min": 0.9}, True, "accuracy 0.95 meets >= 0.9"),
        ({"accuracy": 0.9}, {"metric": "accuracy", "min": 0.9}, True, "accuracy 0.9 meets >= 0.9"),
        ({"accuracy": 0.85}, {"metric": "accuracy", "min": 0.9}, False, "accuracy 0.85 misses >= 0.9"),
        ({"logLoss": 0.3}, {"metric": "logLoss", "max": 0.5}, True, "logLoss 0.3 meets <= 0.5"),
        ({"logLoss": 0.7}, {"metric": "logLoss", "max": 0.5}, False, "logLoss 0.7 misses <= 0.5"),
        ({"r2": 0.8}, {"metric": "r2", "min": 0.5, "max": 0.99}, True, "r2 0.8 meets >= 0.5 and <= 0.99"),
        ({"r2": 1.0}, {"metric": "r2", "min": 0.5, "max": 0.99}, False, "r2 1 misses >= 0.5 and <= 0.99"),
        ({"r2": 0.2}, {"metric": "r2", "min": 0.5, "max": 0.99}, False, "r2 0.2 misses >= 0.5 and <= 0.99"),
        ({"accuracy": 0.95}, {"metric": "f1", "min": 0.9}, False, "f1 was not measured"),
    ],
    ids=["min", "at-min", "below-min", "max", "above-max", "between", "above-range", "below-range", "missing"],
)
def test_a_threshold_says_what_was_measured_against_which_bound(
    metrics: dict[str, float], bar: dict, passed: bool, message: str
) -> None:
    found = rules.checks(version(metrics=metrics, validation=bars(bar)), None)
    assert found == [CheckResult(name=f"threshold:{bar['metric']}", passed=passed, message=message)]


def test_every_threshold_is_reported_in_order() -> None:
    policy = bars({"metric": "f1", "min": 0.9}, {"metric": "accuracy", "min": 0.99}, {"metric": "logLoss", "max": 1})
    found = rules.checks(version(metrics={"accuracy": 0.95, "f1": 0.94}, validation=policy), None)
    assert [(c.name, c.passed) for c in found] == [
        ("threshold:f1", True),
        ("threshold:accuracy", False),
        ("threshold:logLoss", False),
    ]


def test_a_missed_threshold_never_reads_as_met() -> None:
    found = rules.checks(
        version(metrics={"accuracy": 0.79996}, validation=bars({"metric": "accuracy", "min": 0.8})), None
    )
    assert not found[0].passed and found[0].message != "accuracy 0.8 misses >= 0.8"


# -- the champion --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "ours", "theirs", "allowed", "passed"),
    [
        ("accuracy", 0.91, 0.90, 0.0, True),
        ("accuracy", 0.90, 0.90, 0.0, True),  # a tie keeps up with the champion
        ("accuracy", 0.89, 0.90, 0.0, False),
        ("accuracy", 0.89, 0.90, 0.02, True),
        ("r2", 0.70, 0.75, 0.01, False),
        ("logLoss", 0.30, 0.35, 0.0, True),  # lower is better
        ("logLoss", 0.40, 0.35, 0.0, False),
        ("logLoss", 0.36, 0.35, 0.02, True),
        ("rmse", 12.0, 10.0, 1.0, False),
        ("mae", 9.5, 10.0, 0.0, True),
    ],
)
def test_a_version_must_keep_up_with_the_champion_on_the_primary_metric(
    metric: str, ours: float, theirs: float, allowed: float, passed: bool
) -> None:
    champion = version(1, metrics={metric: theirs})
    candidate = version(2, metrics={metric: ours}, validation={"primaryMetric": metric, "allowedRegression": allowed})
    [check] = rules.checks(candidate, champion)
    assert (check.name, check.passed) == (f"champion:{metric}", passed)
    assert check.message == f"{metric} {ours:.4g} vs champion cancer-v1 {theirs:.4g} (allowed regression {allowed:g})"


@pytest.mark.parametrize(("metric", "ours", "theirs"), [("accuracy", 0.7, 0.8), ("logLoss", 0.8, 0.7)])
def test_a_regression_of_exactly_the_allowed_amount_passes(metric: str, ours: float, theirs: float) -> None:
    candidate = version(2, metrics={metric: ours}, validation={"primaryMetric": metric, "allowedRegression": 0.1})
    [check] = rules.checks(candidate, version(1, metrics={metric: theirs}))
    assert check.passed, check.message


@pytest.mark.parametrize(
    ("ours", "champion", "validation"),
    [
        ({"accuracy": 0.5}, None, {"primaryMetric": "accuracy"}),  # the first version of a model
        ({"accuracy": 0.5}, {"f1": 0.9}, {"primaryMetric": "accuracy"}),  # the champion never measured it
        ({"f1": 0.5}, {"accuracy": 0.9}, {"primaryMetric": "accuracy"}),  # nor did this version
        ({"accuracy": 0.5}, {"accuracy": 0.9}, {}),  # no primary metric
        ({"accuracy": 0.5}, {"accuracy": 0.9}, None),  # no validation policy at all
    ],
    ids=["no-champion", "champion-lacks-it", "version-lacks-it", "no-primary", "no-policy"],
)
def test_without_a_comparable_champion_there_is_no_champion_check(
    ours: dict, champion: dict | None, validation: dict | None
) -> None:
    best = version(1, metrics=champion) if champion is not None else None
    assert rules.checks(version(2, metrics=ours, validation=validation), best) == []


# -- the stage -----------------------------------------------------------------------------------------------


def approved(by: str = "alice", reason: str | None = None) -> dict:
    return {"state": "Approved", "by": by, **({"reason": reason} if reason else {})}


def rejected(by: str = "bob", reason: str | None = None) -> dict:
    return {"state": "Rejected", "by": by, **({"reason": reason} if reason else {})}


@pytest.mark.parametrize(
    ("current", "results", "approval", "auto", "expected"),
    [
        (None, [PASSED], None, False, ("Validated", "AwaitingApproval")),
        ("Candidate", [PASSED], {"state": "Pending"}, False, ("Validated", "AwaitingApproval")),
        (None, [PASSED], approved(), False, ("Approved", "ApprovedByApprover")),
        ("Validated", [PASSED], approved(), False, ("Approved", "ApprovedByApprover")),
        ("Validated", [PASSED], None, True, ("Approved", "AutoApproved")),
        (None, [PASSED, MISSED, BEHIND], None, False, ("Rejected", "ValidationFailed")),
        (None, [MISSED], approved(), False, ("Rejected", "ValidationFailed")),  # an approval cannot override a check
        (None, [MISSED], None, True, ("Rejected", "ValidationFailed")),
        ("Validated", [PASSED], rejected(), False, ("Rejected", "RejectedByApprover")),
        (None, [PASSED], rejected(), True, ("Rejected", "RejectedByApprover")),  # a person overrides the policy
        ("Approved", [PASSED], rejected(), False, ("Rejected", "RejectedByApprover")),
        ("Rejected", [PASSED], approved(), False, ("Approved", "ApprovedByApprover")),  # a person changed their mind
        ("Approved", [PASSED], {"state": "Pending"}, False, ("Validated", "AwaitingApproval")),  # approval withdrawn
        ("Archived", [PASSED], approved(), False, ("Archived", "Superseded")),
        ("Archived", [MISSED], rejected(), True, ("Archived", "Superseded")),
    ],
)
def test_the_stage_follows_the_checks_then_the_approver_then_the_policy(
    current: str | None, results: list[CheckResult], approval: dict | None, auto: bool, expected: tuple[str, str]
) -> None:
    subject = version(approval=approval, validation={"autoApprove": auto})
    decision = rules.stage(subject, results, current)
    assert (decision.stage, decision.reason) == expected


@pytest.mark.parametrize(
    ("results", "approval", "message"),
    [
        ([PASSED], None, "validated (accuracy 0.95 meets >= 0.9); waiting for spec.approval"),
        ([], None, "validated (no thresholds were set); waiting for spec.approval"),
        ([PASSED, MISSED, BEHIND], None, f"{MISSED.message}; {BEHIND.message}"),
        ([PASSED], approved("alice"), "approved by alice"),
        ([PASSED], approved("alice", "reviewed the bias report"), "approved by alice: reviewed the bias report"),
        ([PASSED], rejected("bob", "trained on last year's data"), "rejected by bob: trained on last year's data"),
        ([PASSED], rejected("bob"), "rejected by bob: no reason given"),
    ],
)
def test_the_stage_says_who_decided_or_what_failed(
    results: list[CheckResult], approval: dict | None, message: str
) -> None:
    assert rules.stage(version(approval=approval), results, None).message == message


def test_a_version_without_a_validation_policy_waits_for_a_person() -> None:
    assert rules.stage(version(), [], None).stage == "Validated"


# -- serving and superseding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "serves"),
    [
        ({}, []),
        ({"servingVersion": "cancer-v1"}, [("cancer-v1", "stable")]),
        (
            {"servingVersion": "cancer-v1", "rollout": {"phase": "Stable", "canaryVersion": "cancer-v2"}},
            [("cancer-v1", "stable")],
        ),
        ({"servingVersion": "cancer-v1", "rollout": {"phase": "Progressing"}}, [("cancer-v1", "stable")]),
        ({"rollout": {"phase": "Progressing", "canaryVersion": "cancer-v2"}}, [("cancer-v2", "canary")]),
        ({"servingVersion": None, "rollout": None}, []),
    ],
    ids=["nothing", "stable", "promoted", "no-canary-yet", "canary-only", "nulls"],
)
def test_a_deployment_serves_its_stable_version_and_a_running_canary(status: dict, serves: list) -> None:
    assert rules.served(ModelDeploymentStatus.model_validate(status)) == serves
    assert rules.served(None) == []


def test_served_by_names_the_first_deployments_by_name_each_track_once() -> None:
    refs = [ServingRef(deployment=f"d{i:02d}", track="stable") for i in reversed(range(MAX_SERVED_BY + 5))]
    found = rules.serving_refs([*refs, *refs])
    assert len(found) == MAX_SERVED_BY
    assert found[0] == ServingRef(deployment="d00", track="stable")
    assert found[-1].deployment == f"d{MAX_SERVED_BY - 1}"
    both = [ServingRef(deployment="d", track="stable"), ServingRef(deployment="d", track="canary")]
    assert [r.track for r in rules.serving_refs(both)] == ["canary", "stable"]
    assert rules.serving_refs([]) == []


@pytest.mark.parametrize("stage", [None, "Validated", "Rejected", "Archived"])
def test_only_an_approved_version_is_superseded(stage: str | None) -> None:
    assert rules.superseded_by(version(1, stage=stage), [version(2, stage="Approved")]) is None


def test_the_newest_approval_above_a_version_supersedes_it() -> None:
    others = [version(4, stage="Validated"), version(3, stage="Approved"), version(2, stage="Approved"), version(5)]
    newer = rules.superseded_by(version(1, stage="Approved"), others)
    assert newer is not None and newer.metadata.name == "cancer-v3"
    itself = version(1, stage="Approved")
    assert rules.superseded_by(itself, [itself, version(1, stage="Approved")]) is None


# -- the status a look at a version writes --------------------------------------------------------------------

WHEN = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def test_a_version_approved_by_a_person_records_who_when_and_tells_the_change_once() -> None:
    approved = version(2, approval={"state": "Approved", "by": "alice"}, metrics={"accuracy": 0.9})
    first = rules.judged(approved, version(1, stage="Approved", metrics={"accuracy": 0.8}), [], WHEN)
    assert (first.status.stage, first.status.approved_by, first.status.approved_at) == ("Approved", "alice", WHEN)
    assert first.status.champion == "cancer-v1" and first.status.stage_time == WHEN
    assert first.events == [("Normal", "Approved", "Candidate → Approved: approved by alice")]
    again = rules.judged(approved.model_copy(update={"status": first.status}), None, [], WHEN + dt.timedelta(1))
    assert again.events == [] and again.status.stage_time == WHEN, "no change: nothing told, no time moved"
    assert again.status.checks == first.status.checks and again.status.champion == "cancer-v1", "checked once"


def test_a_rejected_version_is_a_warning_and_who_serves_it_follows_the_index() -> None:
    failing = version(2, validation={"thresholds": [{"metric": "accuracy", "min": 0.99}]})
    serving = [ServingRef(deployment="d", track="canary")]
    judged = rules.judged(failing, None, serving, WHEN)
    assert judged.status.stage == "Rejected" and judged.events[0][:2] == ("Warning", "Rejected")
    assert judged.status.to_api()["servedBy"] == [{"deployment": "d", "track": "canary"}]
    nobody = rules.judged(failing.model_copy(update={"status": judged.status}), None, [], WHEN)
    assert "servedBy" not in nobody.status.to_api()
    ready = {c.type: c.status for c in judged.status.conditions or []}
    assert ready["Validated"] == "False" and ready["Stalled"] == "False" and ready["Ready"] == "True"


def test_a_full_served_by_stays_as_it_is_when_only_deployments_past_its_end_change() -> None:
    full = rules.serving_refs([ServingRef(deployment=f"d{i:02d}", track="stable") for i in range(MAX_SERVED_BY)])
    last = full[-1].deployment
    assert rules.shown_as_before(full, {(f"{last}x", "stable"), ("zz", "canary")})
    assert not rules.shown_as_before(full, {(last, "stable")}), "the last one shown stops serving"
    assert not rules.shown_as_before(full, {("a", "stable")}), "one sorting first starts serving"
    assert not rules.shown_as_before(full, {("zz", "stable"), ("a", "stable")})
    assert not rules.shown_as_before(full[:-1], {("zz", "stable")}), "not full: a new one is shown"


def test_when_served_by_is_said_to_stay_it_does() -> None:
    """Against the whole list recomputed, for random sets of servers and random changes."""
    rng, skipped = random.Random(16), 0
    for _ in range(500):
        serving = {(f"d{rng.randrange(60):02d}", rng.choice(["stable", "canary"])) for _ in range(rng.randrange(40))}
        changed = {(f"d{rng.randrange(60):02d}", rng.choice(["stable", "canary"])) for _ in range(rng.randint(1, 2))}
        shown = rules.serving_refs([ServingRef(deployment=d, track=t) for d, t in serving])
        after = rules.serving_refs([ServingRef(deployment=d, track=t) for d, t in serving ^ changed])
        if rules.shown_as_before(shown, changed):
            assert after == shown
            skipped += 1
    assert skipped > 10, "the draws must reach the case where nothing changes"
