"""Drift statistics between a baseline histogram and a live one on the same bins.

Only aggregated counts are needed: the serving pods export them, so no raw request leaves a pod.
Every function takes counts (not proportions) so that sample sizes are known to the tests that need them.

SciPy is imported by the functions that use it, on their first call: it was a third of the operator's memory at start
(about 60 MB), and an operator that judges no canary and watches no drift never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Added to empty bins before taking logarithms (PSI), as most PSI implementations do.
EPSILON = 1e-4


def _proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else np.full_like(counts, 1.0 / len(counts))


def psi(baseline: np.ndarray, live: np.ndarray) -> float:
    """Population Stability Index: sum of (q - p) * ln(q / p), empty bins smoothed."""
    p = np.clip(_proportions(baseline), EPSILON, None)
    q = np.clip(_proportions(live), EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(baseline: np.ndarray, live: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, so between 0 and 1)."""
    from scipy.spatial import distance

    return float(distance.jensenshannon(_proportions(baseline), _proportions(live), base=2))


def kolmogorov_smirnov(baseline: np.ndarray, live: np.ndarray) -> float:
    """The KS statistic on binned data: the largest gap between the two cumulative distributions."""
    return float(np.max(np.abs(np.cumsum(_proportions(baseline)) - np.cumsum(_proportions(live)))))


def bin_centers(edges: list[float]) -> np.ndarray:
    """Representative values of `le`-style bins: midpoints inside, and half a bin beyond each open end."""
    edges_array = np.asarray(edges, dtype=float)
    if len(edges_array) == 0:
        return np.zeros(1)
    if len(edges_array) == 1:
        return np.array([edges_array[0] - 0.5, edges_array[0] + 0.5])
    inner = (edges_array[:-1] + edges_array[1:]) / 2
    first = edges_array[0] - (edges_array[1] - edges_array[0]) / 2
    last = edges_array[-1] + (edges_array[-1] - edges_array[-2]) / 2
    return np.concatenate([[first], inner, [last]])


def wasserstein(baseline: np.ndarray, live: np.ndarray, edges: list[float]) -> float:
    """Earth mover's distance between the binned distributions, in units of the baseline's standard
    deviation, so one threshold fits features of any scale."""
    centers = bin_centers(edges)
    p, q = _proportions(baseline), _proportions(live)
    mean = float(np.sum(centers * p))
    spread = float(np.sqrt(np.sum(p * (centers - mean) ** 2))) or 1.0
    from scipy import stats

    return float(stats.wasserstein_distance(centers, centers, p, q) / spread)


@dataclass(frozen=True)
class ChiSquared:
    statistic: float
    p_value: float
    degrees_of_freedom: int


def chi_squared(baseline: np.ndarray, live: np.ndarray, min_expected: float = 5.0) -> ChiSquared:
    """A two-sample chi-squared test of homogeneity on the 2 x K table (baseline counts, live counts).

    Testing live counts against the baseline's proportions as if they were the truth (a goodness-of-fit test)
    ignores that the baseline is a sample too, and raises false alarms; the two-sample test does not.
    Bins whose expected count is below `min_expected` are pooled so the chi-squared approximation holds.
    """
    table = np.vstack([np.asarray(baseline, dtype=float), np.asarray(live, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    expected = table.sum(axis=0) * table.sum(axis=1, keepdims=True) / table.sum()
    sparse = expected.min(axis=0) < min_expected
    if sparse.any():
        pooled = table[:, sparse].sum(axis=1, keepdims=True)
        table = np.hstack([table[:, ~sparse], pooled]) if (~sparse).any() else pooled
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return ChiSquared(0.0, 1.0, 0)
    from scipy import stats

    statistic, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    return ChiSquared(float(statistic), float(p_value), int(dof))
