"""A canary step's gates, each measured over the step's window on both tracks, and the step's verdict.

Absolute gates judge the canary alone (`maxErrorRate`, `maxLatency`); relative gates judge it against the stable
version over the same window (`maxErrorRateIncrease`, `maxLatencyRatio`); model gates judge what it answers: the
divergence of its predictions from the stable version's (`maxPredictionDivergence`) and the drift of its traffic
from its own training baseline (`maxFeatureDrift`). In a shadow step the canary answers only mirrored requests, and
the stable servers' comparison of both answers on the same records adds `minAgreement` (classifiers) and
`maxMeanAbsoluteDifference` (regressors). Each gate is Pass, Fail, or Inconclusive when it has too few
samples or cannot be measured; the step fails as soon as one gate fails, and is judged at its end otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from modelops.api.v1alpha1.common import duration_seconds
from modelops.api.v1alpha1.modeldeployment import (
    CanaryAnalysis,
    GateName,
    GateResult,
    Measurement,
    ShadowComparison,
)
from modelops.drift.statistics import jensen_shannon

from .measure import ServingTotals, aligned, latency_quantile

#: How long canary pods may stay unready before the canary is rolled back.
NOT_READY_LIMIT = 300.0

Outcome = Literal["Wait", "Pass", "Fail", "Inconclusive"]


@dataclass(frozen=True)
class Window:
    """Both tracks' counts over one step's window."""

    canary: ServingTotals
    stable: ServingTotals
    start: dt.datetime
    seconds: float
    source: Literal["pods", "prometheus"]
    #: In a shadow step, the canary's version number, as the stable servers' comparison labels it.
    shadow: str | None = None


@dataclass(frozen=True)
class StepJudgement:
    outcome: Outcome
    reason: str
    measurement: Measurement


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _points(value: float) -> str:
    return f"{value * 100:.1f} points"


def _milliseconds(value: float) -> str:
    return f"{value * 1000:.0f}ms"


def _times(value: float) -> str:
    return f"{value:.2f}x"


def _distance(value: float) -> str:
    return f"{value:.3f}"


@dataclass(frozen=True)
class _Gate:
    label: str
    field: str
    unit: str
    shown: Callable[[float], str]
    #: The limit is a floor (the value must reach it), not a ceiling.
    floor: bool = False


GATES: dict[GateName, _Gate] = {
    "ready": _Gate("canary pods not ready for", "the readiness limit", "seconds", lambda s: f"{s:.0f}s"),
    "errorRate": _Gate("error rate", "maxErrorRate", "requests", _percent),
    "latency": _Gate("latency", "maxLatency", "requests", _milliseconds),
    "errorRateIncrease": _Gate("error rate increase over stable", "maxErrorRateIncrease", "requests", _points),
    "latencyRatio": _Gate("latency ratio to stable", "maxLatencyRatio", "requests", _times),
    "predictionDivergence": _Gate(
        "prediction divergence from stable (Jensen-Shannon)", "maxPredictionDivergence", "records", _distance
    ),
    "featureDrift": _Gate(
        "feature drift from the training baseline (Jensen-Shannon)", "maxFeatureDrift", "records", _distance
    ),
    "agreement": _Gate("agreement with stable on mirrored records", "minAgreement", "records", _percent, floor=True),
    "meanAbsoluteDifference": _Gate(
        "mean absolute difference from stable on mirrored records",
        "maxMeanAbsoluteDifference",
        "records",
        lambda v: f"{v:.4g}",
    ),
}


def gate(
    name: GateName,
    value: float | None,
    limit: float,
    samples: float,
    fewest: int,
    detail: str | None = None,
    problem: str | None = None,
) -> GateResult:
    """One gate's result: Inconclusive without a value or with fewer samples than `fewest`, else Pass or Fail."""
    spec = GATES[name]
    if problem is not None:
        return GateResult(gate=name, limit=limit, samples=int(samples), verdict="Inconclusive", detail=problem)
    if samples < fewest:
        why = f"{samples:.0f} of the {fewest} {spec.unit} needed"
        return GateResult(gate=name, limit=limit, samples=int(samples), verdict="Inconclusive", detail=why)
    if value is None:
        return GateResult(
            gate=name, limit=limit, samples=int(samples), verdict="Inconclusive", detail=detail or "not measurable"
        )
    within = value >= limit if spec.floor else value <= limit
    verdict: Literal["Pass", "Fail"] = "Pass" if within else "Fail"
    return GateResult(
        gate=name, value=round(value, 6), limit=limit, samples=int(samples), verdict=verdict, detail=detail
    )


def records(totals: ServingTotals) -> float:
    """Records predicted (each counted once in the prediction histogram)."""
    return sum(totals.predictions.values())


def _rate(totals: ServingTotals) -> float | None:
    return totals.errors / totals.requests if totals.requests else None


def prediction_divergence(canary: ServingTotals, stable: ServingTotals) -> float | None:
    """Jensen-Shannon distance between the two tracks' prediction histograms, on the union of their bins."""
    labels = sorted(set(canary.predictions) | set(stable.predictions))
    if not labels or not records(canary) or not records(stable):
        return None
    return jensen_shannon(
        np.array([stable.predictions.get(b, 0.0) for b in labels]),
        np.array([canary.predictions.get(b, 0.0) for b in labels]),
    )


def feature_drift(canary: ServingTotals) -> tuple[str, float] | None:
    """The feature of the canary's traffic farthest from its training baseline, and its Jensen-Shannon distance."""
    scores = []
    for name, baseline in canary.baseline.items():
        bins = aligned(canary.kinds.get(name, "numeric"), baseline, canary.features.get(name, {}))
        if bins.observed.sum() > 0:
            scores.append((jensen_shannon(bins.expected, bins.observed), name))
    if not scores:
        return None
    score, name = max(scores)
    return name, score


def shadow_comparison(window: Window) -> ShadowComparison | None:
    """What the stable servers found comparing their answers with the shadow's, in a shadow step."""
    if window.shadow is None:
        return None
    counts = window.stable.mirrored.get(window.shadow, {})
    compared = counts.get("compared", 0.0)
    return ShadowComparison(
        compared=int(compared),
        agreement=round(counts["agreed"] / compared, 6) if compared and "agreed" in counts else None,
        mean_absolute_difference=(
            round(counts["difference"] / compared, 6) if compared and "difference" in counts else None
        ),
        dropped=int(counts.get("dropped", 0)),
        unreachable=int(counts.get("unreachable", 0)),
        rejected=int(counts.get("rejected", 0)),
    )


def _unanswered(comparison: ShadowComparison) -> str | None:
    lost = {"dropped": comparison.dropped, "unreachable": comparison.unreachable, "rejected": comparison.rejected}
    said = ", ".join(f"{n} {kind}" for kind, n in lost.items() if n)
    return f"mirrored requests without an answer: {said}" if said else None


def shadow_gates(analysis: CanaryAnalysis, window: Window, problem: str | None) -> list[GateResult]:
    """The gates on the comparison of both versions' answers to the same mirrored records."""
    comparison = shadow_comparison(window)
    if comparison is None:
        return []
    results = []
    detail = _unanswered(comparison)
    wanted: tuple[tuple[GateName, float | None, float | None, str], ...] = (
        ("agreement", analysis.min_agreement, comparison.agreement, "a regressor: use maxMeanAbsoluteDifference"),
        (
            "meanAbsoluteDifference",
            analysis.max_mean_absolute_difference,
            comparison.mean_absolute_difference,
            "a classifier: use minAgreement",
        ),
    )
    for name, limit, value, otherwise in wanted:
        if limit is not None:
            why = (
                detail if value is not None or not comparison.compared else f"not measurable: the model is {otherwise}"
            )
            results.append(gate(name, value, limit, comparison.compared, analysis.min_records, why, problem))
    return results


def measure_gates(analysis: CanaryAnalysis, window: Window) -> list[GateResult]:
    """Every gate the analysis declares, over the window."""
    canary, stable = window.canary, window.stable
    problem = canary.problem or stable.problem
    fewest = max(analysis.min_requests, 1)
    both = min(canary.requests, stable.requests)
    canary_rate, stable_rate = _rate(canary), _rate(stable)
    quantile = analysis.latency_quantile
    canary_latency = latency_quantile(canary.latency_buckets, quantile)
    stable_latency = latency_quantile(stable.latency_buckets, quantile)
    results = [
        gate("errorRate", canary_rate, analysis.max_error_rate, canary.requests, fewest, problem=problem),
        gate(
            "latency",
            canary_latency,
            duration_seconds(analysis.max_latency),
            canary.requests,
            fewest,
            detail=f"p{quantile * 100:g}",
            problem=problem,
        ),
    ]
    if analysis.max_error_rate_increase is not None:
        increase = None if canary_rate is None or stable_rate is None else canary_rate - stable_rate
        detail = (
            None if increase is None else f"canary {_percent(canary_rate or 0)}, stable {_percent(stable_rate or 0)}"
        )
        results.append(
            gate("errorRateIncrease", increase, analysis.max_error_rate_increase, both, fewest, detail, problem)
        )
    if analysis.max_latency_ratio is not None:
        ratio = detail = None
        if canary_latency is not None and stable_latency:
            ratio = canary_latency / stable_latency
            detail = (
                f"p{quantile * 100:g}: canary {_milliseconds(canary_latency)}, stable {_milliseconds(stable_latency)}"
            )
        results.append(gate("latencyRatio", ratio, analysis.max_latency_ratio, both, fewest, detail, problem))
    if analysis.max_prediction_divergence is not None:
        results.append(
            gate(
                "predictionDivergence",
                prediction_divergence(canary, stable),
                analysis.max_prediction_divergence,
                min(records(canary), records(stable)),
                analysis.min_records,
                problem=problem,
            )
        )
    if analysis.max_feature_drift is not None:
        worst = feature_drift(canary)
        results.append(
            gate(
                "featureDrift",
                worst[1] if worst else None,
                analysis.max_feature_drift,
                records(canary),
                analysis.min_records,
                f"worst feature: {worst[0]}" if worst else "the canary exports no training baseline",
                problem,
            )
        )
    return [*results, *shadow_gates(analysis, window, problem)]


def describe(result: GateResult) -> str:
    """One gate's result in words, as a reason says it."""
    spec = GATES[result.gate]
    detail = f" ({result.detail})" if result.detail else ""
    if result.verdict == "Inconclusive" or result.value is None:
        return f"{spec.label}: {result.detail or 'not measurable'}"
    measured = f"{spec.label} {spec.shown(result.value)} over {result.samples} {spec.unit}"
    if result.verdict == "Fail":
        crossed = "is below" if spec.floor else "exceeds"
        return f"{measured} {crossed} {spec.field} {spec.shown(result.limit)}{detail}"
    return f"{spec.label} {spec.shown(result.value)}{detail}"


def judge_step(
    analysis: CanaryAnalysis,
    step: int,
    steps: int,
    pause: float,
    window: Window,
    canary_ready: bool,
    not_ready_for: float,
) -> StepJudgement:
    """Wait, Pass, Fail or Inconclusive: a failed gate fails the step at once; otherwise the step is judged when
    its window has lasted its pause."""
    canary = window.canary
    latency = latency_quantile(canary.latency_buckets, analysis.latency_quantile)
    measurement = Measurement(
        requests=int(canary.requests),
        error_rate=round(canary.errors / canary.requests, 4) if canary.requests else None,
        latency=round(latency, 4) if latency is not None else None,
        stable_requests=int(window.stable.requests),
        window_start=window.start,
        source=window.source,
        shadow=shadow_comparison(window),
    )
    where = f"step {step + 1}/{steps}" + (" (shadow)" if window.shadow is not None else "")
    if not canary_ready:
        if not_ready_for > NOT_READY_LIMIT:
            ready = gate("ready", not_ready_for, NOT_READY_LIMIT, not_ready_for, 0)
            measurement = measurement.model_copy(update={"gates": [ready]})
            return StepJudgement("Fail", f"canary pods not ready for {not_ready_for:.0f}s", measurement)
        return StepJudgement("Wait", "waiting for the canary pods to be ready", measurement)
    results = measure_gates(analysis, window)
    measurement = measurement.model_copy(update={"gates": results})
    failed = [r for r in results if r.verdict == "Fail"]
    if failed:
        return StepJudgement("Fail", "; ".join(map(describe, failed)), measurement)
    short = [r for r in results if r.verdict == "Inconclusive"]
    if window.seconds < pause:
        so_far = f" ({'; '.join(map(describe, short))})" if short else ""
        return StepJudgement("Wait", f"{where}: measuring for {pause - window.seconds:.0f}s more{so_far}", measurement)
    if short:
        reason = f"{where} inconclusive after {window.seconds:.0f}s: {'; '.join(map(describe, short))}"
        return StepJudgement("Inconclusive", reason, measurement)
    summary = f"{', '.join(map(describe, results))} over {canary.requests:.0f} requests"
    return StepJudgement("Pass", f"{where} healthy: {summary}", measurement)
