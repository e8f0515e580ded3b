"""A served version's worth from the counts its servers export: the estimate and the realized metrics against a
record-by-record computation on synthetic calibrated scores, and the verdicts a monitor draws from them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from modelops.api.v1alpha1 import ModelMonitor
from modelops.api.v1alpha1.modelmonitor import PerformanceSpec
from modelops.contract.serving import SCORE_BINS, score_bin
from modelops.drift import DatasetDrift
from modelops.resources import modelmonitor as rules
from modelops.resources.measure import (
    QualityKey,
    Scope,
    ServingTotals,
    prometheus_queries,
    serving_totals,
    totals_from_prometheus,
)
from modelops.resources.quality import Served, assess, estimated, realized

HOLDOUT = {"accuracy": 0.95, "f1": 0.95, "rocAuc": 0.98}
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def synthetic(rows: int = 5000, shift: float = 0.0, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated scores of the positive class (its labels drawn with that probability), and the predictions."""
    rng = np.random.default_rng(seed)
    scores = np.clip(rng.beta(0.6 + shift, 0.6 + shift, rows), 1e-6, 1 - 1e-6)
    labels = (rng.random(rows) < scores).astype(int)
    return scores, labels, (scores > 0.5).astype(int)


def counts(scores: np.ndarray, predicted: np.ndarray, labels: np.ndarray | None = None) -> dict[QualityKey, float]:
    """What a server counts of these answers, record by record, and of their labels when given."""
    out: dict[QualityKey, float] = {}

    def add(key: QualityKey, value: float) -> None:
        out[key] = out.get(key, 0.0) + value

    for i, (score, prediction) in enumerate(zip(scores, predicted, strict=True)):
        add(("expected", str(prediction), "1"), score)
        add(("expected", str(prediction), "0"), 1 - score)
        b = score_bin(int(min(max(np.ceil(score * SCORE_BINS), 1), SCORE_BINS)))
        add(("scores", b, ""), 1)
        add(("scoreSum", b, ""), score)
        if labels is not None:
            add(("labelled", str(prediction), str(labels[i])), 1)
            add(("labelledScores", b, str(labels[i])), 1)
    return out


def test_the_estimate_is_the_expected_accuracy_and_the_realized_metrics_are_scikit_learns() -> None:
    scores, labels, predicted = synthetic()
    counted = counts(scores, predicted, labels)
    estimate, labelled = estimated(counted), realized(counted)
    assert estimate is not None and labelled is not None
    assert estimate.records == 5000 and labelled.records == 5000
    assert estimate.accuracy == pytest.approx(np.mean(np.maximum(scores, 1 - scores)), abs=1e-9), "exact"
    assert labelled.accuracy == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    assert labelled.precision == pytest.approx(precision_score(labels, predicted), abs=1e-12)
    assert labelled.recall == pytest.approx(recall_score(labels, predicted), abs=1e-12)
    assert labelled.f1 == pytest.approx(f1_score(labels, predicted), abs=1e-12)
    assert labelled.roc_auc == pytest.approx(roc_auc_score(labels, scores), abs=0.005), "within the bins' width"
    # calibrated scores: what they expect is what the labels then show, within sampling error
    assert estimate.accuracy == pytest.approx(labelled.accuracy, abs=0.02)
    assert estimate.roc_auc == pytest.approx(labelled.roc_auc, abs=0.02)


def test_a_regressors_realized_errors_come_from_its_sums_and_it_has_no_estimate() -> None:
    errors = np.asarray([1.0, -2.0, 3.0, -4.0])
    counted: dict[QualityKey, float] = {
        ("values", "", ""): 4,
        ("absoluteError", "", ""): float(np.abs(errors).sum()),
        ("squaredError", "", ""): float((errors**2).sum()),
    }
    labelled = realized(counted)
    assert labelled is not None and labelled.mae == 2.5 and labelled.rmse == pytest.approx(np.sqrt(7.5))
    assert estimated(counted) is None


def served(counted: dict[QualityKey, float], track: Any = "stable", holdout: dict | None = None) -> Served:
    return Served("cancer-v1", track, HOLDOUT if holdout is None else holdout, counted)


def test_uncertain_answers_are_degraded_from_the_estimate_before_any_label() -> None:
    scores, _, predicted = synthetic(rows=400, shift=8.0)  # scores near 0.5: the model is unsure
    worth, degraded = assess(PerformanceSpec(metric="accuracy", max_drop=0.1), served(counts(scores, predicted)))
    assert worth.verdict == "Degraded" and worth.realized is None and worth.estimated is not None
    assert worth.estimated < 0.85 and worth.holdout == 0.95
    assert degraded is not None and degraded.startswith("estimated accuracy") and "over 400 records" in degraded
    assert "cancer-v1's held-out 0.950 (maxDrop 0.1)" in degraded


def test_labels_degrade_a_version_the_estimate_would_pass() -> None:
    scores, _, predicted = synthetic(rows=300, shift=-0.4)  # confident answers
    wrong = 1 - predicted  # every label contradicts a confident answer
    spec = PerformanceSpec(metric="f1", max_drop=0.1, min_labels=50)
    worth, degraded = assess(spec, served(counts(scores, predicted, wrong)))
    assert worth.estimated is not None and worth.estimated > 0.85
    assert worth.realized == 0 and worth.verdict == "Degraded"
    assert degraded is not None and "realized f1 0.000 over 300 labels" in degraded
    assert "estimated" not in degraded


def test_too_few_records_or_labels_judge_nothing_and_a_missing_holdout_says_so() -> None:
    scores, labels, predicted = synthetic(rows=40, shift=8.0)
    worth, degraded = assess(PerformanceSpec(min_records=100, min_labels=50), served(counts(scores, predicted, labels)))
    assert (worth.verdict, degraded) == ("NotEnoughData", None)
    assert worth.estimated is not None, "shown, not judged"
    worth, _ = assess(PerformanceSpec(metric="rocAuc"), served(counts(scores, predicted), holdout={}))
    assert (
        worth.verdict == "NotEnoughData"
        and worth.message == "cancer-v1 records no held-out rocAuc: nothing to hold it to"
    )


def test_an_error_metric_degrades_when_it_rises() -> None:
    counted: dict[QualityKey, float] = {("values", "", ""): 100, ("absoluteError", "", ""): 900.0}
    spec = PerformanceSpec(metric="mae", max_drop=2.0, min_labels=50)
    worth, degraded = assess(spec, served(counted, holdout={"mae": 5.0}))
    assert worth.realized == 9.0 and worth.verdict == "Degraded"
    assert degraded == "realized mae 9.000 over 100 labels is 4.000 above cancer-v1's held-out 5.000 (maxDrop 2)"


def window() -> ServingTotals:
    return ServingTotals(requests=400.0, latency_buckets={0.1: 400.0, float("inf"): 400.0})


def performance_monitor(**retrain: Any) -> ModelMonitor:
    spec: dict[str, Any] = {"deployment": "cancer", "performance": {"metric": "accuracy", "maxDrop": 0.1}}
    if retrain:
        spec["retrain"] = {
            "enabled": True,
            "template": {
                "model": "cancer",
                "task": "classification",
                "dataset": {"uri": "sklearn://breast_cancer", "target": "target"},
                "trainer": {"estimator": {"className": "sklearn.linear_model.LogisticRegression"}},
                "artifacts": {"uri": "s3://models"},
            },
            **retrain,
        }
    return ModelMonitor.model_validate({"metadata": {"name": "watch", "namespace": "team-a"}, "spec": spec})


def test_only_the_stable_versions_degradation_raises_the_alert_and_it_retrains_when_told() -> None:
    scores, _, predicted = synthetic(rows=400, shift=8.0)
    unsure = counts(scores, predicted)
    canary = rules.judge(performance_monitor(), window(), (served({}), served(unsure, track="canary")))
    assert "PerformanceDegraded" not in canary.alerts
    assert [p.verdict for p in canary.performance] == ["NotEnoughData", "Degraded"]

    stable = rules.judge(performance_monitor(), window(), (served(unsure),))
    assert stable.alerts["PerformanceDegraded"].startswith("estimated accuracy")
    report = rules.report(performance_monitor(), stable, rules.Webhook(), None, T0)
    assert report.events[0][:2] == ("Warning", "PerformanceDegraded")
    assert report.status.to_api()["performance"][0]["verdict"] == "Degraded"
    assert rules.retrain_reason(performance_monitor(enabled=True), stable) is not None
    drift_only = performance_monitor(on=["DriftDetected"])
    assert rules.retrain_reason(drift_only, stable) is None
    assert not rules.report(drift_only, stable, rules.Webhook(), None, T0).retrain


def test_a_monitor_without_performance_raises_no_performance_condition() -> None:
    plain = ModelMonitor.model_validate({"metadata": {"name": "w", "namespace": "n"}, "spec": {"deployment": "d"}})
    judged = rules.Judgement([], DatasetDrift("NoDrift", [], 0.0), 10.0, 0.0, 0.01, {})
    report = rules.report(plain, judged, rules.Webhook(), None, T0)
    assert "PerformanceDegraded" not in {c.type for c in report.status.conditions or []}
    assert "PerformanceDegraded" not in report.raised


def test_the_prometheus_rule_holds_the_performance_alert_only_when_the_monitor_does() -> None:
    def alerts(watched: ModelMonitor) -> list[str]:
        return [r["alert"] for r in rules.prometheus_rule(watched, "cancer")["spec"]["groups"][0]["rules"]]

    assert alerts(performance_monitor())[-1] == "ModelOpsPerformanceDegraded"
    rule = rules.prometheus_rule(performance_monitor(), "cancer")["spec"]["groups"][0]["rules"][-1]
    assert rule["expr"] == (
        'modelops_monitor_alert_active{namespace="team-a",monitor="watch",alert="PerformanceDegraded"} == 1'
    )
    plain = ModelMonitor.model_validate({"metadata": {"name": "w", "namespace": "n"}, "spec": {"deployment": "d"}})
    assert "ModelOpsPerformanceDegraded" not in alerts(plain)


def test_the_quality_counts_read_from_prometheus_are_those_scraped_from_the_pods() -> None:
    queries = prometheus_queries(Scope("team-a", "cancer", "2", quality="all"), "5m")
    assert queries["modelops_expected_records_total"] == (
        'sum by (predicted, actual) (increase(modelops_expected_records_total{namespace="team-a",model="cancer",'
        'version="2"}[5m]))'
    )
    assert "modelops_labelled_values_total" in queries
    assert "modelops_expected_records_total" not in prometheus_queries(Scope("team-a", "cancer", "2"), "5m")
    labelled = prometheus_queries(Scope("team-a", "cancer", "2", quality="labelled"), "1h")
    assert set(labelled) == {n for n in queries if n.startswith("modelops_labelled_")}, "the label window reads no more"
    scraped = "\n".join(
        [
            "# TYPE modelops_expected_records_total counter",
            'modelops_expected_records_total{model="cancer",version="2",predicted="1",actual="0"} 0.25',
            "# TYPE modelops_labelled_score_records_total counter",
            'modelops_labelled_score_records_total{model="cancer",version="2",bin="0.75",actual="1"} 3',
            "# TYPE modelops_labelled_values_total counter",
            'modelops_labelled_values_total{model="cancer",version="2"} 4',
        ]
    )
    answers: dict[str, list[dict[str, Any]]] = {"requests": [], "errors": [], "latency": []}
    answers["modelops_expected_records_total"] = [{"metric": {"predicted": "1", "actual": "0"}, "value": [0, "0.5"]}]
    answers["modelops_labelled_score_records_total"] = [{"metric": {"bin": "0.75", "actual": "1"}, "value": [0, "6"]}]
    answers["modelops_labelled_values_total"] = [{"metric": {}, "value": [0, "8"]}]
    expected = {("expected", "1", "0"): 0.5, ("labelledScores", "0.75", "1"): 6.0, ("values", "", ""): 8.0}
    assert totals_from_prometheus(answers).quality == expected
    assert serving_totals([scraped, scraped], version="2").quality == expected, "summed over two pods alike"
