"""The ModelMonitor's pure judgement of a window: alignment on the baseline's bins, windows of counters, alerts."""

from __future__ import annotations

import datetime as dt
from collections import deque

from modelops.api.v1alpha1 import ModelMonitor
from modelops.contract.serving import bin_label
from modelops.controllers.pods import started
from modelops.resources.measure import ServingTotals, aligned, counts_over, window_delta
from modelops.resources.modelmonitor import judge
from modelops.runtime.telemetry import baseline_bins

#: The training baseline as the servers export it (`modelops_baseline_observations`): bins by their labels.
SUMMARIES = [
    {"name": "age", "kind": "numeric", "edges": [30.0, 50.0], "counts": [300, 400, 300]},
    {"name": "plan", "kind": "categorical", "categories": ["basic", "pro"], "counts": [600, 300, 100]},
]
BASELINE = {s["name"]: {k: float(v) for k, v in baseline_bins(s).items()} for s in SUMMARIES}
KINDS = {s["name"]: s["kind"] for s in SUMMARIES}
MONITOR = ModelMonitor.model_validate(
    {
        "metadata": {"name": "w", "namespace": "n"},
        "spec": {"deployment": "d", "drift": {"minSamples": 100, "datasetDriftShare": 0.4}, "errorRate": {"max": 0.1}},
    }
)


def live(age: list[float], plan: dict[str, float], requests: float = 100, errors: float = 0) -> ServingTotals:
    edges = [bin_label(30.0), bin_label(50.0), "+Inf"]
    return ServingTotals(
        requests=requests,
        errors=errors,
        features={"age": dict(zip(edges, age, strict=True)), "plan": plan},
        baseline=BASELINE,
        kinds=KINDS,
    )


def test_live_counts_are_aligned_on_the_baseline_bins() -> None:
    plan = aligned("categorical", BASELINE["plan"], {"pro": 5, "basic": 10, "__other__": 1, "__missing__": 7})
    assert plan.expected.tolist() == [600, 300, 100] and plan.observed.tolist() == [10, 5, 1] and plan.edges is None
    # numeric bins in the order of their upper bounds (not of their labels as text), the open one last
    bins = {bin_label(e): float(i) for i, e in enumerate([100.0, 9.5, 20.0])} | {"+Inf": 9.0}
    age = aligned("numeric", bins, {bin_label(9.5): 2, "+Inf": 3})
    assert (
        age.edges == [9.5, 20.0, 100.0]
        and age.expected.tolist() == [1, 2, 0, 9]
        and age.observed.tolist() == [2, 0, 0, 3]
    )


def test_a_window_is_the_difference_of_two_scrapes_and_survives_restarts() -> None:
    older = live([10, 10, 10], {"basic": 5}, requests=10)
    newer = live([30, 15, 10], {"basic": 9}, requests=40, errors=2)
    delta = window_delta(older, newer)
    assert delta.requests == 30 and delta.errors == 2
    assert delta.features["age"][bin_label(30.0)] == 20 and delta.features["plan"]["basic"] == 4
    restarted = window_delta(newer, live([3, 0, 0], {"basic": 1}, requests=3))
    assert restarted.requests == 3, "a counter that went down restarted from zero"


def test_one_history_of_scrapes_gives_the_window_and_the_longer_label_window() -> None:
    def scrape(requests: float, labels: float) -> dict[str, ServingTotals]:
        return {"1": ServingTotals(requests=requests, quality={("values", "", ""): labels})}

    history = deque([(0.0, scrape(0, 0)), (30.0, scrape(100, 10)), (60.0, scrape(250, 12)), (90.0, scrape(300, 40))])
    window, labels = counts_over(history, 30)["1"], counts_over(history, 90)["1"]
    assert window.requests == 50 and window.quality[("values", "", "")] == 28, "since the scrape 30s before"
    assert labels.requests == 300 and labels.quality[("values", "", "")] == 40, "since the first, 90s before"
    assert counts_over(history, 120)["1"].requests == 300, "the oldest, once half the window old"
    assert counts_over([(0.0, {}), (30.0, scrape(5, 1))], 30)["1"].requests == 5, "a version not seen before"


def test_a_window_is_told_after_a_restart_only_when_the_counters_can_tell_it() -> None:
    """A process that scraped for less than the window (it started, or took over, lately) has no scrape to subtract:
    a pod's whole count is the window only if it started within it; else the window waits for half its length."""

    def scrape(requests: float) -> dict[str, ServingTotals]:
        return {"1": ServingTotals(requests=requests)}

    first = [(0.0, scrape(7000))]
    assert counts_over(first, 30) is None, "pods older than the window: their whole count is no window's"
    counted = counts_over(first, 30, fresh=True)
    assert counted is not None and counted["1"].requests == 7000, "pods that started within the window"
    young = [(0.0, scrape(7000)), (10.0, scrape(7020))]
    assert counts_over(young, 60) is None, "10 s of a 60 s window"
    since_first = counts_over(young, 60, patience=0)
    assert since_first is not None and since_first["1"].requests == 20, "what this process saw, when it must do"
    half = [*young, (30.0, scrape(7050))]
    shorter = counts_over(half, 60)
    assert shorter is not None and shorter["1"].requests == 50, "half the window: judged on what was seen"


def test_same_distribution_raises_nothing_and_a_shift_names_the_feature() -> None:
    calm = judge(MONITOR, live([30, 40, 30], {"basic": 60, "pro": 30, "__other__": 10}))
    assert calm.alerts == {} and {f.verdict for f in calm.features} == {"NoDrift"}
    shifted = judge(MONITOR, live([5, 15, 80], {"basic": 60, "pro": 30, "__other__": 10}))
    assert "age" in shifted.alerts["DriftDetected"] and "plan" not in shifted.alerts["DriftDetected"]


def test_too_few_samples_and_errors() -> None:
    thin = judge(MONITOR, live([3, 4, 3], {"basic": 6, "pro": 3, "__other__": 1}, requests=5))
    assert {f.verdict for f in thin.features} == {"NotEnoughData"} and "DriftDetected" not in thin.alerts
    failing = judge(MONITOR, live([30, 40, 30], {"basic": 60, "pro": 30}, requests=100, errors=30))
    assert "error rate 30.0% over 100 requests" in failing.alerts["ErrorRateHigh"]


def test_a_pods_counters_began_when_its_containers_last_started() -> None:
    pod = {
        "status": {
            "startTime": "2026-12-01T10:00:00Z",
            "containerStatuses": [
                {"state": {"running": {"startedAt": "2026-12-01T11:00:00Z"}}},  # restarted since the pod began
                {"state": {"running": {"startedAt": "2026-12-01T10:00:05Z"}}},
            ],
        }
    }
    assert started(pod) == dt.datetime(2026, 12, 1, 11, 0, tzinfo=dt.UTC)
    assert started({"status": {"containerStatuses": [{"state": {"waiting": {}}}]}}) is None
