"""A canary rollout without a cluster: each gate over a step's window (`analysis.measure_gates`), the step's verdict
(`analysis.judge_step`), a window's counts from the pods' counters (`measure.since`), and what the rollout does with
a verdict, an approver's command or a pause nobody answered (`rollout.decide`, `answer`, `waited`, `requested`,
`plan`), down to the condition a user reads (`modeldeployment.status`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import pytest
from scipy.spatial import distance

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.modeldeployment import (
    COMMAND_ANNOTATION,
    COMMAND_AT_ANNOTATION,
    COMMAND_BY_ANNOTATION,
    COMMAND_REASON_ANNOTATION,
    CanaryAnalysis,
    GateResult,
)
from modelops.resources import analysis, rollout
from modelops.resources import modeldeployment as md
from modelops.resources.measure import ServingTotals, since
from modelops.resources.policy import Policy
from tests.support.objects import MODEL, NAMESPACE
from tests.support.objects import version as model_version

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
T1, T2, T3, T4 = (T0 + dt.timedelta(minutes=m) for m in (1, 2, 3, 4))
ASKED = dt.datetime(2026, 12, 1, 12, 2, 30, tzinfo=dt.UTC)
BOUNDS = (0.05, 0.1, 0.15, 0.3, 0.5, 1.0, math.inf)
PAUSE = 60.0
STEPS = [{"weight": 25, "pause": "1m"}, {"weight": 50, "pause": "1m"}]
PROMETHEUS_DOWN = "Prometheus at http://prometheus:9090 did not answer: connection refused"


# -- builders ------------------------------------------------------------------------------------------------


def latency(upper: float, requests: float) -> dict[float, float]:
    """A cumulative latency histogram of `requests`, all in the bucket whose upper bound is `upper`."""
    return {bound: (requests if bound >= upper else 0.0) for bound in BOUNDS}


def p95(upper: float) -> float:
    """The 95th percentile of `latency(upper, n)`, interpolated inside its bucket as Prometheus does."""
    lower = max((b for b in BOUNDS if b < upper), default=0.0)
    return lower + (upper - lower) * 0.95


def totals(
    requests: float = 100,
    errors: float = 0,
    slow: float | None = 0.1,
    predictions: dict[str, float] | None = None,
    features: dict[str, dict[str, float]] | None = None,
    baseline: dict[str, dict[str, float]] | None = None,
    problem: str | None = None,
) -> ServingTotals:
    """One track's counts over a window: `slow` is the upper bound of the latency bucket every request fell in."""
    return ServingTotals(
        requests=requests,
        errors=errors,
        latency_buckets=latency(slow, requests) if slow is not None else {},
        predictions=predictions or {},
        features=features or {},
        baseline=baseline or {},
        kinds=dict.fromkeys(baseline or {}, "numeric"),
        problem=problem,
    )


def gates(**fields: Any) -> CanaryAnalysis:
    """An analysis as a manifest writes it (camelCase)."""
    return CanaryAnalysis.model_validate(fields)


EVERY_GATE = gates(
    maxErrorRateIncrease=0.02, maxLatencyRatio=2, maxPredictionDivergence=0.1, maxFeatureDrift=0.1, minRecords=100
)


def window(canary: ServingTotals, stable: ServingTotals, seconds: float = PAUSE) -> analysis.Window:
    return analysis.Window(canary, stable, T0, seconds, "pods")


def measured(result: list[GateResult], name: str) -> GateResult:
    return next(r for r in result if r.gate == name)


def deployment(version: int | None = None, **fields: Any) -> ModelDeployment:
    """ModelDeployment `d` of model `cancer`, rolled out by canary in two one-minute steps with these gates."""
    spec: dict[str, Any] = {
        "model": MODEL,
        "rollout": {"strategy": "Canary", "canary": {"steps": STEPS, "analysis": fields}},
    }
    if version is not None:
        spec["version"] = version
    return ModelDeployment.model_validate(
        {"metadata": {"name": "d", "namespace": NAMESPACE, "generation": 3}, "spec": spec}
    )


def approved(number: int) -> ModelVersion:
    return model_version(number, stage="Approved", approval={"state": "Approved", "by": "alice"})


V1, V2, V3 = approved(1), approved(2), approved(3)
SERVED = rollout.history_start([], "cancer-v1", "stable", T0)


def running(step: int = 0, deploy: ModelDeployment | None = None) -> rollout.Rollout:
    """cancer-v2 as a canary beside cancer-v1, started at T0, at `step`."""
    started = rollout.plan(deploy or deployment(), V1, V2, None, SERVED, T0)
    assert started.canary is V2 and started.status.phase == "Progressing"
    return dataclasses.replace(started, status=started.status.model_copy(update={"step": step}))


def judged(
    canary: ServingTotals,
    checks: CanaryAnalysis | None = None,
    step: int = 0,
    seconds: float = PAUSE,
    stable: ServingTotals | None = None,
) -> analysis.StepJudgement:
    return analysis.judge_step(
        checks or gates(), step, len(STEPS), PAUSE, window(canary, stable or totals(), seconds), True, seconds
    )


HEALTHY = totals(100, errors=1)
TOO_FEW = totals(10)
FAILING = totals(100, errors=10)


# -- the gates -----------------------------------------------------------------------------------------------

FEATURE_BASELINE = {"age": {"30.0": 50.0, "60.0": 50.0, "+Inf": 0.0}}
TWO_CLASSES = {"0": 100.0, "1": 100.0}


def drifted(live: dict[str, float], records: float = 200) -> ServingTotals:
    """A canary whose traffic's feature `age` fell in these bins, with `records` predictions."""
    return totals(200, predictions={"0": records}, features={"age": live}, baseline=FEATURE_BASELINE)


@pytest.mark.parametrize(
    ("name", "checks", "canary", "stable", "verdict", "value"),
    [
        ("errorRate", gates(), totals(100, errors=1), totals(), "Pass", 0.01),
        ("errorRate", gates(), totals(100, errors=5), totals(), "Pass", 0.05),  # the limit is tolerated
        ("errorRate", gates(), totals(100, errors=10), totals(), "Fail", 0.1),
        ("errorRate", gates(), totals(10, errors=5), totals(), "Inconclusive", None),
        ("latency", gates(), totals(slow=0.1), totals(), "Pass", p95(0.1)),
        ("latency", gates(), totals(slow=1.0), totals(), "Fail", p95(1.0)),
        ("latency", gates(), totals(10, slow=1.0), totals(), "Inconclusive", None),
        ("latency", gates(), totals(slow=None), totals(), "Inconclusive", None),  # requests, but no histogram
        ("errorRateIncrease", EVERY_GATE, totals(100, errors=2), totals(100, errors=1), "Pass", 0.01),
        ("errorRateIncrease", EVERY_GATE, totals(100, errors=4), totals(100, errors=1), "Fail", 0.03),
        ("errorRateIncrease", EVERY_GATE, totals(100, errors=4), totals(10, errors=0), "Inconclusive", None),
        ("latencyRatio", EVERY_GATE, totals(slow=0.15), totals(slow=0.1), "Pass", p95(0.15) / p95(0.1)),
        ("latencyRatio", EVERY_GATE, totals(slow=0.3), totals(slow=0.1), "Fail", 3.0),
        ("latencyRatio", EVERY_GATE, totals(slow=0.3), totals(10, slow=0.1), "Inconclusive", None),
        ("latencyRatio", EVERY_GATE, totals(slow=0.3), totals(slow=None), "Inconclusive", None),
        (
            "predictionDivergence",
            EVERY_GATE,
            totals(predictions={"0": 104, "1": 96}),
            totals(predictions=TWO_CLASSES),
            "Pass",
            distance.jensenshannon([100, 100], [104, 96], base=2),
        ),
        (
            "predictionDivergence",
            EVERY_GATE,
            totals(predictions={"0": 200}),
            totals(predictions=TWO_CLASSES),
            "Fail",
            distance.jensenshannon([100, 100], [200, 0], base=2),
        ),
        (
            "predictionDivergence",
            EVERY_GATE,
            totals(predictions={"0": 30, "1": 20}),
            totals(predictions=TWO_CLASSES),
            "Inconclusive",
            None,
        ),
        (
            "featureDrift",
            EVERY_GATE,
            drifted({"30.0": 105, "60.0": 95}),
            totals(),
            "Pass",
            distance.jensenshannon([50, 50, 0], [105, 95, 0], base=2),
        ),
        (
            "featureDrift",
            EVERY_GATE,
            drifted({"30.0": 20, "+Inf": 180}),
            totals(),
            "Fail",
            distance.jensenshannon([50, 50, 0], [20, 0, 180], base=2),
        ),
        ("featureDrift", EVERY_GATE, drifted({"+Inf": 200}, records=50), totals(), "Inconclusive", None),
        ("featureDrift", EVERY_GATE, totals(predictions={"0": 200}), totals(), "Inconclusive", None),  # no baseline
    ],
)
def test_each_gate_passes_fails_or_is_inconclusive(
    name: str,
    checks: CanaryAnalysis,
    canary: ServingTotals,
    stable: ServingTotals,
    verdict: str,
    value: float | None,
) -> None:
    result = measured(analysis.measure_gates(checks, window(canary, stable)), name)
    assert result.verdict == verdict, result
    if value is None:
        assert result.value is None and result.detail, "an inconclusive gate says why"
    else:
        assert result.value == pytest.approx(value, abs=1e-6)


def test_a_gate_with_too_few_samples_says_how_many_it_had_and_needed() -> None:
    result = analysis.measure_gates(EVERY_GATE, window(totals(12, predictions={"0": 40}), totals(predictions={})))
    assert measured(result, "errorRate").detail == "12 of the 20 requests needed"
    assert measured(result, "latency").detail == "12 of the 20 requests needed"
    assert measured(result, "predictionDivergence").detail == "0 of the 100 records needed"
    assert measured(result, "featureDrift").detail == "40 of the 100 records needed"
    no_baseline = analysis.measure_gates(EVERY_GATE, window(totals(predictions={"0": 200}), totals()))
    assert measured(no_baseline, "featureDrift").detail == "the canary exports no training baseline"


def test_only_the_declared_gates_are_measured() -> None:
    assert [r.gate for r in analysis.measure_gates(gates(), window(HEALTHY, totals()))] == ["errorRate", "latency"]
    assert [r.gate for r in analysis.measure_gates(EVERY_GATE, window(HEALTHY, totals()))] == [
        "errorRate",
        "latency",
        "errorRateIncrease",
        "latencyRatio",
        "predictionDivergence",
        "featureDrift",
    ]


def test_the_prediction_divergence_is_the_jensen_shannon_distance_of_the_two_histograms() -> None:
    """On the union of both tracks' classes: a class only the canary predicts counts as 0 on the stable side."""
    canary = totals(predictions={"cat": 70, "dog": 50, "bird": 80})
    stable = totals(predictions={"cat": 120, "dog": 80})
    result = measured(analysis.measure_gates(EVERY_GATE, window(canary, stable)), "predictionDivergence")
    expected = distance.jensenshannon([0, 120, 80], [80, 70, 50], base=2)  # bird, cat, dog
    assert result.value == pytest.approx(expected, abs=1e-6) and result.samples == 200
    assert expected > 0.1 and result.verdict == "Fail"


def test_a_canary_answering_one_class_where_the_stable_one_answers_two_fails_the_divergence_gate() -> None:
    """200 OK on every request and no slower: only what it answers tells it apart."""
    canary = totals(200, predictions={"1": 200})
    stable = totals(200, predictions=TWO_CLASSES)
    judgement = judged(canary, gates(maxPredictionDivergence=0.1), stable=stable)
    assert judgement.outcome == "Fail"
    divergence = measured(judgement.measurement.gates or [], "predictionDivergence")
    assert divergence.value == pytest.approx(distance.jensenshannon([0.5, 0.5], [0.0, 1.0], base=2), abs=1e-6)
    assert [r.verdict for r in judgement.measurement.gates or []] == ["Pass", "Pass", "Fail"]
    assert judgement.reason == (
        "prediction divergence from stable (Jensen-Shannon) 0.558 over 200 records exceeds maxPredictionDivergence "
        "0.100"
    )


def test_a_canary_three_times_slower_than_stable_fails_the_ratio_but_passes_the_absolute_latency() -> None:
    canary, stable = totals(slow=0.3), totals(slow=0.1)
    judgement = judged(canary, gates(maxLatency="500ms", maxLatencyRatio=2), stable=stable)
    assert judgement.outcome == "Fail"
    assert measured(judgement.measurement.gates or [], "latency").verdict == "Pass"
    ratio = measured(judgement.measurement.gates or [], "latencyRatio")
    assert ratio.verdict == "Fail" and ratio.value == pytest.approx(3.0)
    assert judgement.reason == (
        "latency ratio to stable 3.00x over 100 requests exceeds maxLatencyRatio 2.00x (p95: canary 292ms, stable 98ms)"
    )
    assert judgement.measurement.latency == pytest.approx(0.2925)


def test_an_error_rate_within_the_limit_but_above_stables_fails_the_increase_gate() -> None:
    judgement = judged(totals(100, errors=4), EVERY_GATE, stable=totals(100, errors=1))
    assert judgement.outcome == "Fail"
    assert measured(judgement.measurement.gates or [], "errorRate").verdict == "Pass"
    assert judgement.reason == (
        "error rate increase over stable 3.0 points over 100 requests exceeds maxErrorRateIncrease 2.0 points "
        "(canary 4.0%, stable 1.0%)"
    )


@pytest.mark.parametrize("unreadable", ["canary", "stable"])
def test_counts_that_could_not_be_read_make_every_gate_inconclusive(unreadable: str) -> None:
    """Prometheus down is no verdict on the canary: neither a failure nor a pass, even with failing counts."""
    down = ServingTotals(problem=PROMETHEUS_DOWN)
    canary, stable = (down, totals()) if unreadable == "canary" else (FAILING, down)
    result = analysis.measure_gates(EVERY_GATE, window(canary, stable))
    assert len(result) == 6
    assert {(r.verdict, r.detail) for r in result} == {("Inconclusive", PROMETHEUS_DOWN)}
    mid_step = judged(canary, EVERY_GATE, seconds=10, stable=stable)
    assert mid_step.outcome == "Wait" and PROMETHEUS_DOWN in mid_step.reason
    at_the_end = judged(canary, EVERY_GATE, stable=stable)
    assert at_the_end.outcome == "Inconclusive"
    assert at_the_end.reason.startswith("step 1/2 inconclusive after 60s: error rate: " + PROMETHEUS_DOWN)


# -- the step's verdict -------------------------------------------------------------------------------------


def test_a_failed_gate_fails_the_step_at_once_even_mid_step() -> None:
    judgement = judged(FAILING, seconds=5)
    assert judgement.outcome == "Fail"
    assert judgement.reason == "error rate 10.0% over 100 requests exceeds maxErrorRate 5.0%"
    assert judgement.measurement.error_rate == 0.1 and judgement.measurement.requests == 100
    assert [(r.gate, r.verdict) for r in judgement.measurement.gates or []] == [
        ("errorRate", "Fail"),
        ("latency", "Pass"),
    ]


def test_a_healthy_step_waits_for_its_pause_then_passes() -> None:
    waiting = judged(HEALTHY, seconds=20)
    assert waiting.outcome == "Wait" and waiting.reason == "step 1/2: measuring for 40s more"
    passed = judged(HEALTHY, step=1, seconds=60)
    assert passed.outcome == "Pass"
    assert passed.reason == "step 2/2 healthy: error rate 1.0%, latency 98ms (p95) over 100 requests"
    assert {r.verdict for r in passed.measurement.gates or []} == {"Pass"}


def test_too_few_requests_wait_during_the_step_and_are_inconclusive_at_its_end() -> None:
    waiting = judged(TOO_FEW, seconds=30)
    assert waiting.outcome == "Wait"
    assert waiting.reason == (
        "step 1/2: measuring for 30s more (error rate: 10 of the 20 requests needed; "
        "latency: 10 of the 20 requests needed)"
    )
    ended = judged(TOO_FEW, seconds=61)
    assert ended.outcome == "Inconclusive"
    assert ended.reason == (
        "step 1/2 inconclusive after 61s: error rate: 10 of the 20 requests needed; "
        "latency: 10 of the 20 requests needed"
    )


def test_a_canary_not_ready_waits_then_fails_after_the_readiness_limit() -> None:
    empty = window(ServingTotals(), ServingTotals(), 0.0)
    for seconds in (10.0, analysis.NOT_READY_LIMIT):
        judgement = analysis.judge_step(gates(), 0, 2, PAUSE, empty, False, seconds)
        assert judgement.outcome == "Wait" and judgement.reason == "waiting for the canary pods to be ready"
    late = analysis.NOT_READY_LIMIT + 1
    failed = analysis.judge_step(gates(), 0, 2, PAUSE, empty, False, late)
    assert failed.outcome == "Fail" and failed.reason == f"canary pods not ready for {late:.0f}s"
    assert [(r.gate, r.verdict, r.limit) for r in failed.measurement.gates or []] == [
        ("ready", "Fail", analysis.NOT_READY_LIMIT)
    ]


# The old test_canary_verdicts, on judge_step and decide: the verdict of a step of the two-step canary (pause 10s,
# maxErrorRate 5%, maxLatency 200ms, minRequests 20), then what the rollout does with it.
OLD_CANARY = gates(maxErrorRate=0.05, maxLatency="200ms", minRequests=20)


@pytest.mark.parametrize(
    ("step", "elapsed", "requests", "errors", "slow", "ready", "outcome", "action"),
    [
        (0, 20, 100, 0, 0.05, True, "Pass", "Advance"),
        (1, 20, 100, 0, 0.05, True, "Pass", "Promote"),
        (0, 5, 100, 0, 0.05, True, "Wait", "Wait"),  # still inside the pause
        (0, 20, 5, 0, 0.05, True, "Inconclusive", "Pause"),  # too few requests by the step's end
        (0, 5, 100, 10, 0.05, True, "Fail", "RollBack"),  # errors roll back at once
        (0, 20, 100, 0, 0.5, True, "Fail", "RollBack"),  # too slow
        (0, 20, 0, 0, None, False, "Wait", "Wait"),  # pods not ready yet
        (0, 400, 0, 0, None, False, "Fail", "RollBack"),  # never ready
    ],
)
def test_canary_verdicts(
    step: int,
    elapsed: float,
    requests: float,
    errors: float,
    slow: float | None,
    ready: bool,
    outcome: str,
    action: str,
) -> None:
    canary = totals(requests, errors, slow)
    judgement = analysis.judge_step(
        OLD_CANARY, step, 2, 10.0, window(canary, totals(), elapsed), ready, elapsed if not ready else 0.0
    )
    assert judgement.outcome == outcome, judgement.reason
    decided = rollout.decide(running(step), judgement, OLD_CANARY, 2, T1)
    assert decided.status.last_decision is not None and decided.status.last_decision.action == action


# -- a window's counts from the pods' counters ------------------------------------------------------------------


def test_a_pod_that_came_during_the_window_counts_whole() -> None:
    start = {"a": totals(100, errors=1, predictions={"0": 100})}
    now = {"a": totals(150, errors=3, predictions={"0": 140, "1": 10}), "b": totals(30, errors=2)}
    window_ = since(start, now)
    assert (window_.requests, window_.errors) == (80, 4)
    assert window_.predictions == {"0": 40, "1": 10}
    assert window_.latency_buckets[0.1] == 80 and window_.latency_buckets[0.05] == 0


def test_a_pod_whose_counters_went_down_counts_from_zero() -> None:
    """Its server restarted: what it counted since is all of the window's, not a negative number."""
    window_ = since({"a": totals(500, errors=50), "b": totals(100)}, {"a": totals(40, errors=1), "b": totals(120)})
    assert (window_.requests, window_.errors) == (60, 1)


def test_a_pod_that_went_away_counts_no_more() -> None:
    window_ = since({"a": totals(100), "gone": totals(900, errors=90)}, {"a": totals(130, errors=3)})
    assert (window_.requests, window_.errors) == (30, 3)
    assert since({"gone": totals(900)}, {}).requests == 0


# -- what the rollout does with a verdict ---------------------------------------------------------------------


def test_a_passed_step_advances_the_canary_to_the_next_step() -> None:
    judgement = judged(HEALTHY)
    advanced = rollout.decide(running(0), judgement, gates(), len(STEPS), T1)
    assert advanced.canary is V2 and advanced.stable is V1
    assert (advanced.status.phase, advanced.status.step, advanced.status.step_started) == ("Progressing", 1, T1)
    assert advanced.actions == ["Start", "Advance"]
    assert advanced.status.measurement == judgement.measurement
    assert advanced.events[-1] == ("Normal", "CanaryAdvanced", f"cancer-v2: {judgement.reason}; step 2")
    last = advanced.status.last_decision
    assert last is not None and (last.action, last.verdict, last.step) == ("Advance", "Pass", 0)


def test_the_last_passed_step_promotes_the_canary() -> None:
    judgement = judged(HEALTHY, step=1)
    promoted = rollout.decide(running(1), judgement, gates(), len(STEPS), T1)
    assert promoted.stable is V2 and promoted.canary is None
    assert promoted.status.phase == "Stable" and promoted.status.canary_version is None
    assert [(h.version, h.track, h.end_reason, h.ended) for h in promoted.history] == [
        ("cancer-v1", "stable", "Replaced", T1),
        ("cancer-v2", "canary", "Promoted", T1),
        ("cancer-v2", "stable", None, None),
    ]
    assert [d.action for d in promoted.status.decisions or []] == ["Start", "Promote"]
    assert promoted.events[-1] == ("Normal", "CanaryPromoted", f"cancer-v2 promoted: {judgement.reason}")


def test_a_failed_step_rolls_the_canary_back() -> None:
    judgement = judged(FAILING, seconds=5)
    rolled = rollout.decide(running(0), judgement, gates(), len(STEPS), T1)
    assert rolled.status.phase == "RolledBack" and rolled.canary is None and rolled.stable is V1
    assert rolled.status.canary_version == "cancer-v2", "the status still names the version that failed"
    assert rollout.rolled_back(rolled.history, "cancer-v2")
    assert rolled.events[-1] == ("Warning", "CanaryRolledBack", f"cancer-v2 rolled back: {judgement.reason}")
    last = rolled.status.last_decision
    assert last is not None and (last.action, last.verdict) == ("RollBack", "Fail")


def test_an_inconclusive_step_pauses_for_an_approver_without_retries() -> None:
    judgement = judged(TOO_FEW)
    paused = rollout.decide(running(0), judgement, gates(maxInconclusive=0), len(STEPS), T1)
    assert paused.status.phase == "Paused" and paused.status.paused_since == T1
    assert paused.canary is V2 and paused.status.serving_canary() == "cancer-v2", "its pods serve on"
    kind, reason, message = paused.events[-1]
    assert (kind, reason) == ("Warning", "RolloutPaused")
    assert message.startswith("cancer-v2: step 1/2 inconclusive after 60s")
    assert "waiting for an approver: modelops rollout promote|abort|retry" in message
    assert "(rolled back after 1h without an answer)" in message
    decision = (paused.status.decisions or [])[-1]
    assert (decision.action, decision.verdict, decision.step) == ("Pause", "Inconclusive", 0)
    assert decision.gates == judgement.measurement.gates
    assert [g.verdict for g in decision.gates or []] == ["Inconclusive", "Inconclusive"]
    assert paused.actions == ["Start", "Pause"]


def test_an_inconclusive_step_is_measured_again_up_to_max_inconclusive_then_pauses() -> None:
    checks = gates(maxInconclusive=1)
    retried = rollout.decide(running(0), judged(TOO_FEW), checks, len(STEPS), T1)
    assert retried.status.phase == "Progressing" and retried.status.step == 0
    assert retried.status.step_started == T1 and retried.status.inconclusive == 1
    assert retried.events[-1][1] == "CanaryStepRetried" and retried.actions == ["Start", "Retry"]
    paused = rollout.decide(retried, judged(TOO_FEW), checks, len(STEPS), T2)
    assert paused.status.phase == "Paused" and paused.status.paused_since == T2
    assert [d.action for d in paused.status.decisions or []] == ["Start", "Retry", "Pause"]


def test_a_wait_is_only_the_last_decision_and_only_when_its_reason_changes() -> None:
    state = running(0)
    first = rollout.decide(state, judged(HEALTHY, seconds=20), gates(), len(STEPS), T1)
    same = rollout.decide(first, judged(HEALTHY, seconds=20), gates(), len(STEPS), T2)
    later = rollout.decide(same, judged(HEALTHY, seconds=40), gates(), len(STEPS), T3)
    assert first.status.last_decision is not None and first.status.last_decision.action == "Wait"
    assert first.status.last_decision.reason == "step 1/2: measuring for 40s more"
    assert same.status.last_decision == first.status.last_decision and same.actions == ["Start", "Wait"]
    assert later.status.last_decision is not None and later.status.last_decision.time == T3
    assert later.status.last_decision.reason == "step 1/2: measuring for 20s more"
    assert later.actions == ["Start", "Wait", "Wait"]
    assert later.status.decisions == state.status.decisions, "waits never enter the decision record"
    assert later.events == state.events


def test_the_decision_record_keeps_only_the_newest_decisions() -> None:
    state = running(0)
    times = [T1 + dt.timedelta(seconds=s) for s in range(rollout.RECORD + 5)]
    for at in times:
        state = rollout.answer(state, rollout.Command("retry", "alice", "", at), V2, len(STEPS), at)
    record = state.status.decisions or []
    assert len(record) == rollout.RECORD
    assert [d.asked for d in record] == times[-rollout.RECORD :], "newest last, the oldest (and the Start) dropped"
    assert state.status.last_decision == record[-1]


# -- a pause nobody answers ---------------------------------------------------------------------------------


def test_a_pause_older_than_inconclusive_timeout_rolls_back() -> None:
    checks = gates(inconclusiveTimeout="30m")
    paused = rollout.decide(running(0), judged(TOO_FEW), checks, len(STEPS), T1)
    younger = rollout.waited(paused, checks, T1 + dt.timedelta(minutes=29))
    assert younger is paused
    rolled = rollout.waited(paused, checks, T1 + dt.timedelta(minutes=31))
    assert rolled.status.phase == "RolledBack" and rolled.canary is None and rolled.status.paused_since is None
    last = rolled.status.last_decision
    assert last is not None and last.action == "RollBack"
    assert last.reason == "no approver answered within inconclusiveTimeout 30m"
    assert rolled.events[-1][:2] == ("Warning", "CanaryRolledBack")
    assert rollout.rolled_back(rolled.history, "cancer-v2")


# -- an approver's command --------------------------------------------------------------------------------------

ANNOTATIONS = {
    COMMAND_ANNOTATION: "promote",
    COMMAND_BY_ANNOTATION: "alice",
    COMMAND_REASON_ANNOTATION: "dashboards look fine",
    COMMAND_AT_ANNOTATION: "2026-12-01T12:02:30Z",
}


def test_a_command_is_read_from_its_four_annotations() -> None:
    assert rollout.requested(ANNOTATIONS) == rollout.Command("promote", "alice", "dashboards look fine", ASKED)
    no_reason = {k: v for k, v in ANNOTATIONS.items() if k != COMMAND_REASON_ANNOTATION}
    assert rollout.requested({**no_reason, COMMAND_ANNOTATION: "abort"}) == rollout.Command("abort", "alice", "", ASKED)
    assert rollout.requested({}) is None
    assert rollout.requested({"other": "x"}) is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({COMMAND_ANNOTATION: "ship-it"}, COMMAND_ANNOTATION),
        ({COMMAND_BY_ANNOTATION: ""}, COMMAND_BY_ANNOTATION),
        ({COMMAND_BY_ANNOTATION: None}, COMMAND_BY_ANNOTATION),
        ({COMMAND_AT_ANNOTATION: "yesterday"}, COMMAND_AT_ANNOTATION),
        ({COMMAND_AT_ANNOTATION: None}, COMMAND_AT_ANNOTATION),
    ],
)
def test_an_unreadable_command_says_which_annotation_is_wrong(changes: dict[str, str | None], named: str) -> None:
    annotations = {k: v for k, v in {**ANNOTATIONS, **changes}.items() if v is not None}
    said = rollout.requested(annotations)
    assert isinstance(said, str) and said.startswith(f"{named}: "), said


def paused_at(step: int) -> rollout.Rollout:
    return rollout.decide(running(step), judged(TOO_FEW, step=step), gates(), len(STEPS), T1)


def command(action: str, at: dt.datetime = ASKED) -> rollout.Command:
    return rollout.Command(action, "alice", "checked by hand", at)  # type: ignore[arg-type]


def test_promote_on_a_paused_last_step_promotes() -> None:
    promoted = rollout.answer(paused_at(1), command("promote"), V2, len(STEPS), T2)
    assert promoted.stable is V2 and promoted.canary is None and promoted.status.phase == "Stable"
    last = promoted.status.last_decision
    assert last is not None and (last.action, last.by, last.asked, last.time) == ("Promote", "alice", ASKED, T2)
    assert last.reason == "promote by alice: checked by hand"
    assert promoted.events[-1][1] == "CanaryPromoted"


def test_promote_on_a_paused_earlier_step_advances() -> None:
    advanced = rollout.answer(paused_at(0), command("promote"), V2, len(STEPS), T2)
    assert advanced.canary is V2 and advanced.status.phase == "Progressing"
    assert (advanced.status.step, advanced.status.step_started, advanced.status.paused_since) == (1, T2, None)
    last = advanced.status.last_decision
    assert last is not None and (last.action, last.by, last.asked) == ("Advance", "alice", ASKED)


def test_abort_rolls_the_canary_back() -> None:
    rolled = rollout.answer(paused_at(0), command("abort"), V2, len(STEPS), T2)
    assert rolled.status.phase == "RolledBack" and rolled.canary is None and rolled.stable is V1
    last = rolled.status.last_decision
    assert last is not None and (last.action, last.by, last.reason) == (
        "RollBack",
        "alice",
        "abort by alice: checked by hand",
    )
    assert rollout.rolled_back(rolled.history, "cancer-v2")


def test_retry_on_a_paused_step_measures_it_again_from_now() -> None:
    retried = rollout.answer(paused_at(1), command("retry"), V2, len(STEPS), T2)
    assert retried.canary is V2 and retried.status.phase == "Progressing"
    assert (retried.status.step, retried.status.step_started, retried.status.paused_since) == (1, T2, None)
    last = retried.status.last_decision
    assert last is not None and (last.action, last.by, last.asked) == ("Retry", "alice", ASKED)


def test_the_same_command_seen_twice_acts_once() -> None:
    """The annotations may outlive a crash between the status write and their removal."""
    once = rollout.answer(paused_at(0), command("promote"), V2, len(STEPS), T2)
    twice = rollout.answer(once, command("promote"), V2, len(STEPS), T3)
    assert twice is once and twice.status.step == 1, "not advanced a second time"
    anew = rollout.answer(once, command("promote", ASKED + dt.timedelta(minutes=5)), V2, len(STEPS), T3)
    assert anew.status.phase == "Stable" and anew.stable is V2, "a new command of the same approver acts"


def test_a_command_with_no_canary_running_is_ignored_with_a_warning() -> None:
    serving = rollout.plan(deployment(), V1, V1, None, SERVED, T1)
    for action in ("promote", "abort", "retry"):
        ignored = rollout.answer(serving, command(action), V1, len(STEPS), T2)
        assert ignored.status == serving.status and ignored.stable is V1 and ignored.canary is None
        assert ignored.events == [
            ("Warning", "RolloutCommandIgnored", f"{action} by alice ignored: no canary is running or paused")
        ]
        assert ignored.actions == []


def test_retry_after_a_rollback_starts_a_new_canary_of_that_version() -> None:
    rolled = rollout.decide(running(1), judged(FAILING, step=1), gates(), len(STEPS), T1)
    planned = rollout.plan(deployment(), V1, V2, rolled.status, rolled.history, T2)
    assert planned.canary is None, "a rolled-back version is not started again on its own"
    retried = rollout.answer(planned, command("retry"), V2, len(STEPS), T2)
    assert retried.canary is V2 and retried.stable is V1
    assert (retried.status.phase, retried.status.step, retried.status.step_started) == ("Progressing", 0, T2)
    last = retried.status.last_decision
    assert last is not None and (last.action, last.by, last.asked) == ("Start", "alice", ASKED)
    assert [(h.version, h.track, h.end_reason) for h in retried.history] == [
        ("cancer-v1", "stable", None),
        ("cancer-v2", "canary", "RolledBack"),
        ("cancer-v2", "canary", None),
    ]
    assert not rollout.rolled_back(retried.history, "cancer-v2")
    continued = rollout.plan(deployment(), V1, V2, retried.status, retried.history, T3)
    assert continued.canary is V2 and continued.status == retried.status and continued.events == []


# -- plan ----------------------------------------------------------------------------------------------------


def test_a_rolled_back_version_is_not_started_again_after_a_newer_one_was_rolled_back_and_rejected() -> None:
    first = rollout.decide(running(0), judged(FAILING), gates(), len(STEPS), T1)  # cancer-v2 fails
    newer = rollout.plan(deployment(), V1, V3, first.status, first.history, T2)
    assert newer.canary is V3 and newer.status.phase == "Progressing"
    second = rollout.decide(newer, judged(FAILING), gates(), len(STEPS), T3)  # cancer-v3 fails too
    assert second.status.canary_version == "cancer-v3"
    back = rollout.plan(deployment(), V1, V2, second.status, second.history, T4)  # cancer-v3 rejected
    assert back.canary is None and back.stable is V1 and back.events == [] and back.actions == []
    assert back.status.phase == "RolledBack"
    assert rollout.rolled_back(back.history, "cancer-v2") and rollout.rolled_back(back.history, "cancer-v3")
    assert [(h.version, h.track, h.end_reason) for h in back.history if h.track == "canary"] == [
        ("cancer-v2", "canary", "RolledBack"),
        ("cancer-v3", "canary", "RolledBack"),
    ]


def test_the_stable_version_selected_again_after_a_rollback_is_stable_and_keeps_the_record() -> None:
    rolled = rollout.decide(running(0), judged(FAILING), gates(), len(STEPS), T1)
    reverted = rollout.plan(deployment(), V1, V1, rolled.status, rolled.history, T2)
    assert reverted.status.phase == "Stable" and reverted.status.canary_version is None
    assert reverted.canary is None and reverted.stable is V1
    assert reverted.status.decisions == rolled.status.decisions
    assert [d.action for d in reverted.status.decisions or []] == ["Start", "RollBack"]
    assert reverted.status.last_decision == rolled.status.last_decision


def test_a_paused_canary_stays_paused_across_plans() -> None:
    paused = paused_at(0)
    planned = rollout.plan(deployment(), V1, V2, paused.status, paused.history, T2)
    assert planned.canary is V2 and planned.status == paused.status and planned.history == paused.history
    assert planned.status.phase == "Paused" and planned.events == [] and planned.actions == []


# -- what the status says -----------------------------------------------------------------------------------


def stalled(deploy: ModelDeployment, state: rollout.Rollout) -> tuple[str, str | None, str | None]:
    selection = md.select_version(deploy, [V1, V2], Policy())
    status = md.status(deploy, selection, state.stable, state.status, state.history, [], None)
    true = [c for c in status.conditions or [] if c.status == "True"]
    assert len(true) == 1, true
    return true[0].type, true[0].reason, true[0].message


def test_a_rollback_with_the_version_pinned_says_to_revert_the_spec_in_git() -> None:
    pinned = deployment(version=2)
    rolled = rollout.decide(running(0, pinned), judged(FAILING), gates(), len(STEPS), T1)
    kind, reason, message = stalled(pinned, rolled)
    assert (kind, reason) == ("Stalled", "RolledBack")
    assert message is not None
    assert message.startswith("rolled back to cancer-v1 (canary cancer-v2: error rate 10.0% over 100 requests")
    assert "the spec still selects cancer-v2 (spec.version 2)" in message
    assert "revert it in Git" in message and "modelops rollout retry md/d" in message


def test_a_rollback_of_the_latest_approved_version_says_to_reject_it_or_approve_a_newer_one() -> None:
    rolled = rollout.decide(running(0), judged(FAILING), gates(), len(STEPS), T1)
    kind, reason, message = stalled(deployment(), rolled)
    assert (kind, reason) == ("Stalled", "RolledBack")
    assert message is not None and message.startswith("rolled back to cancer-v1")
    assert "the spec still selects cancer-v2, the latest Approved version" in message
    assert "reject it (modelops reject mv/cancer-v2) or approve a newer version" in message
    assert "revert it in Git" not in message


def test_a_paused_rollout_is_stalled_waiting_for_an_approver() -> None:
    paused = paused_at(0)
    kind, reason, message = stalled(deployment(), paused)
    assert (kind, reason) == ("Stalled", "RolloutPaused")
    assert message is not None and "waiting for an approver" in message and "inconclusive" in message


def test_selecting_a_rolled_back_version_again_after_a_revert_is_not_silently_ready() -> None:
    """cancer-v2 fails and is rolled back; the spec is reverted to cancer-v1 (Stable), then selects cancer-v2 again:
    cancer-v2 is not started on its own, so the user must be told, not shown a Ready deployment."""
    rolled = rollout.decide(running(0), judged(FAILING), gates(), len(STEPS), T1)
    reverted = rollout.plan(deployment(), V1, V1, rolled.status, rolled.history, T2)
    again = rollout.plan(deployment(), V1, V2, reverted.status, reverted.history, T3)
    assert again.canary is None, "a rolled-back version is not started again on its own"
    kind, _, message = stalled(deployment(), again)
    assert kind == "Stalled" and message is not None and "cancer-v2" in message
