"""Drift statistics against scipy and hand-computed cases; the categorical test's false-alarm rate on null data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from modelops.drift import dataset_drift, feature_drift
from modelops.drift import statistics as s


def test_psi_by_hand() -> None:
    # p = (0.5, 0.5), q = (0.8, 0.2): 0.3 * ln(1.6) + (-0.3) * ln(0.4)
    expected = 0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    assert s.psi(np.array([50, 50]), np.array([80, 20])) == pytest.approx(expected)
    assert s.psi(np.array([10, 20, 30]), np.array([20, 40, 60])) == pytest.approx(0.0)


def test_jensen_shannon_matches_scipy_and_its_bounds() -> None:
    p, q = np.array([10, 30, 60]), np.array([40, 40, 20])
    assert s.jensen_shannon(p, q) == pytest.approx(distance.jensenshannon(p / p.sum(), q / q.sum(), base=2))
    assert s.jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)


def test_ks_on_bins_matches_scipy_on_the_samples_when_bins_are_fine() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20_000), rng.normal(0.3, 1, 20_000)
    edges = list(np.linspace(-5, 5, 1001))
    binned = s.kolmogorov_smirnov(_hist(a, edges), _hist(b, edges))
    assert binned == pytest.approx(stats.ks_2samp(a, b).statistic, abs=0.005)


def test_wasserstein_matches_scipy_in_units_of_the_baseline_spread() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 50_000), rng.normal(11, 2, 50_000)
    edges = list(np.linspace(0, 20, 401))
    exact = stats.wasserstein_distance(a, b) / a.std()
    assert s.wasserstein(_hist(a, edges), _hist(b, edges), edges) == pytest.approx(exact, rel=0.02)
    assert exact == pytest.approx(0.5, rel=0.05)  # a shift of one unit is half a standard deviation


def test_chi_squared_matches_scipy_contingency() -> None:
    baseline, live = np.array([300, 200, 500]), np.array([90, 60, 50])
    result = s.chi_squared(baseline, live)
    statistic, p_value, dof, _ = stats.chi2_contingency(np.vstack([baseline, live]), correction=False)
    assert (result.statistic, result.p_value, result.degrees_of_freedom) == pytest.approx((statistic, p_value, dof))


def test_chi_squared_pools_sparse_categories() -> None:
    result = s.chi_squared(np.array([500, 480, 2, 1, 1]), np.array([100, 95, 0, 1, 0]))
    assert result.degrees_of_freedom == 2  # three sparse categories pooled into one


@pytest.mark.parametrize("categories", [3, 5, 10, 20, 50])
def test_chi_squared_false_alarm_rate_is_near_nominal_on_null_data(categories: int) -> None:
    """Baseline and live windows drawn from one distribution: about 5% of tests at alpha 0.05 may reject."""
    rng = np.random.default_rng(categories)
    weights = rng.dirichlet(np.ones(categories) * 2)
    trials, alpha = 2000, 0.05
    baseline = rng.multinomial(5000, weights, size=trials)
    live = rng.multinomial(1000, weights, size=trials)
    rate = np.mean([s.chi_squared(b, lv).p_value < alpha for b, lv in zip(baseline, live, strict=True)])
    assert 0.03 <= rate <= 0.07, f"false-alarm rate {rate:.3f} with {categories} categories"


def test_goodness_of_fit_against_the_baseline_would_raise_false_alarms() -> None:
    """Why the two-sample test: treating a small baseline as the truth rejects far more often than alpha."""
    rng = np.random.default_rng(5)
    weights = np.full(10, 0.1)
    rates = []
    for _ in range(1000):
        baseline, live = rng.multinomial(500, weights), rng.multinomial(2000, weights)
        rates.append(stats.chisquare(live, baseline / baseline.sum() * live.sum()).pvalue < 0.05)
    assert np.mean(rates) > 0.3


def test_not_enough_samples_is_not_a_verdict() -> None:
    drift = feature_drift("x", np.array([50, 50]), np.array([10, 90]), method="psi", min_samples=200)
    assert drift.verdict == "NotEnoughData" and drift.score is None


def test_decisions_per_feature_and_for_the_dataset() -> None:
    edges = [1.0, 2.0, 3.0]
    base = np.array([250, 250, 250, 250])
    same = feature_drift("a", base, np.array([248, 252, 251, 249]), method="psi", edges=edges)
    moved = feature_drift("b", base, np.array([50, 50, 300, 600]), method="psi", edges=edges)
    thin = feature_drift("c", base, np.array([1, 1, 1, 1]), method="psi", edges=edges)
    assert (same.verdict, moved.verdict, thin.verdict) == ("NoDrift", "Drift", "NotEnoughData")
    overall = dataset_drift([same, moved, thin], share_threshold=0.3)
    assert overall.verdict == "Drift" and overall.drifted == ["b"] and overall.share == pytest.approx(0.5)
    for method in ("jensenShannon", "wasserstein", "ks"):
        assert feature_drift("b", base, np.array([50, 50, 300, 600]), method=method, edges=edges).verdict == "Drift"
    categorical = feature_drift("d", np.array([500, 300, 200]), np.array([100, 100, 800]), method="chiSquared")
    assert categorical.verdict == "Drift" and categorical.p_value < 1e-6


def _hist(values: np.ndarray, edges: list[float]) -> np.ndarray:
    return np.bincount(np.searchsorted(np.asarray(edges), values, side="left"), minlength=len(edges) + 1)
