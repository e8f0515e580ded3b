"""Measuring a canary step: both tracks' counts over the step's window, from their pods or from Prometheus, judged
by `resources.analysis`. In a shadow step the canary's pods are the shadow's, and the stable pods' counts carry their
comparison with it.

From the pods, a window begins with a snapshot of every pod's counters, taken the first time this operator measures
the step with a canary pod ready, and kept in the deployment's Kopf memo: after an operator restart the step's
window begins again, so a verdict never rests on counts from before its window. From Prometheus, the window is `increase(...)` over the time
since the step began.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import kopf

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.common import duration_seconds
from modelops.contract.serving import SERVER_PORT
from modelops.resources import analysis
from modelops.resources import modeldeployment as children
from modelops.resources.measure import Scope, ServingTotals, serving_totals, since
from modelops.resources.rollout import Rollout

from . import kube, pods, prometheus
from .config import POLICY


@dataclass(frozen=True)
class _Snapshot:
    #: The step it is the window of: canary version, step index, when the step began.
    step: tuple[str, int, dt.datetime | None]
    start: dt.datetime
    #: Pod uid → its totals at `start`.
    pods: dict[str, ServingTotals]


def judge(md: ModelDeployment, state: Rollout, when: dt.datetime, memo: kopf.Memo) -> analysis.StepJudgement:
    """Measure both tracks over the current step's window (begun in `memo`) and judge the step."""
    canary, rollout = state.canary, state.status
    spec = md.spec.rollout.canary if md.spec.rollout else None
    assert canary is not None and state.stable is not None and spec is not None, "only a running canary is judged"
    step = min(rollout.step or 0, len(spec.steps) - 1)
    namespace = md.metadata.namespace or ""
    shadow = spec.steps[step].mirror is not None
    tracks: dict[str, children.ServerTrack] = {"canary": "shadow" if shadow else "canary", "stable": "stable"}
    ready = {
        name: [p for p in kube.list_("v1", "Pod", namespace, children.track_labels(md, track)) if pods.ready(p)]
        for name, track in tracks.items()
    }
    begun = rollout.step_started or when
    if ready["canary"]:
        window = _window(md, state, ready, when, memo, str(canary.spec.version) if shadow else None)
    else:  # a window begins once the canary can answer
        memo.canary_window = None
        window = analysis.Window(ServingTotals(), ServingTotals(), when, 0.0, "pods")
    return analysis.judge_step(
        spec.analysis,
        step,
        len(spec.steps),
        duration_seconds(spec.steps[step].pause),
        window,
        bool(ready["canary"]),
        (when - begun).total_seconds(),
    )


def _window(
    md: ModelDeployment,
    state: Rollout,
    ready: dict[str, list[dict[str, Any]]],
    when: dt.datetime,
    memo: kopf.Memo,
    shadow: str | None,
) -> analysis.Window:
    """Both tracks' counts since the window began; `shadow` is the canary's version number in a shadow step."""
    canary, stable = state.canary, state.stable
    assert canary is not None and stable is not None, "only a running canary is measured"
    source = md.spec.metrics.prometheus if md.spec.metrics else None
    namespace = md.metadata.namespace or ""
    if source is not None:
        begun = state.status.step_started or when
        seconds = max((when - begun).total_seconds(), 1.0)
        if not POLICY.prometheus_allowed(source.url):
            refused = ServingTotals(problem=children.PROMETHEUS_NOT_ALLOWED.format(field="spec.metrics.prometheus.url"))
            return analysis.Window(refused, refused, begun, seconds, "prometheus", shadow)

        def track(version: ModelVersion, shadow: str | None = None) -> ServingTotals:
            scope = Scope(namespace, md.spec.model, str(version.spec.version), shadow)
            return prometheus.query_totals(source.url, scope, f"{seconds:.0f}s")

        return analysis.Window(track(canary), track(stable, shadow), begun, seconds, "prometheus", shadow)
    port = md.spec.runtime.port if md.spec.runtime else SERVER_PORT
    now: dict[str, dict[str, ServingTotals]] = {}
    for name, ready_pods in ready.items():
        scraped = {p["metadata"]["uid"]: pods.scrape(p, port) for p in ready_pods}
        now[name] = {uid: serving_totals([text]) for uid, text in scraped.items() if text}
    step = (canary.metadata.name, state.status.step or 0, state.status.step_started)
    snapshot: _Snapshot | None = getattr(memo, "canary_window", None)
    if snapshot is None or snapshot.step != step:
        snapshot = _Snapshot(step, when, {**now["canary"], **now["stable"]})
        memo.canary_window = snapshot
    seconds = (when - snapshot.start).total_seconds()
    return analysis.Window(
        since(snapshot.pods, now["canary"]),
        since(snapshot.pods, now["stable"]),
        snapshot.start,
        seconds,
        "pods",
        shadow,
    )
