"""Per-feature and dataset-level drift decisions; too few samples is "not enough data", never a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import statistics

Method = Literal["psi", "jensenShannon", "wasserstein", "ks", "chiSquared"]
Verdict = Literal["Drift", "NoDrift", "NotEnoughData"]

#: Score above which a feature has drifted; for chiSquared, the p-value below which it has.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,
    "jensenShannon": 0.1,
    "wasserstein": 0.1,
    "ks": 0.1,
    "chiSquared": 0.01,
}


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: Method
    verdict: Verdict
    samples: int
    score: float | None = None
    p_value: float | None = None


def feature_drift(
    feature: str,
    baseline: np.ndarray,
    live: np.ndarray,
    *,
    method: Method,
    edges: list[float] | None = None,
    threshold: float | None = None,
    min_samples: int = 200,
) -> FeatureDrift:
    samples = int(np.asarray(live).sum())
    if samples < min_samples:
        return FeatureDrift(feature, method, "NotEnoughData", samples)
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    if method == "chiSquared":
        test = statistics.chi_squared(baseline, live)
        verdict: Verdict = "Drift" if test.p_value < limit else "NoDrift"
        return FeatureDrift(feature, method, verdict, samples, round(test.statistic, 6), test.p_value)
    if method == "psi":
        score = statistics.psi(baseline, live)
    elif method == "jensenShannon":
        score = statistics.jensen_shannon(baseline, live)
    elif method == "ks":
        score = statistics.kolmogorov_smirnov(baseline, live)
    else:
        score = statistics.wasserstein(baseline, live, edges or [])
    return FeatureDrift(feature, method, "Drift" if score > limit else "NoDrift", samples, round(score, 6))


@dataclass(frozen=True)
class DatasetDrift:
    verdict: Verdict
    drifted: list[str]
    share: float | None


def dataset_drift(features: list[FeatureDrift], share_threshold: float) -> DatasetDrift:
    """The dataset drifted when the share of drifted features (among those with a verdict) exceeds the threshold."""
    judged = [f for f in features if f.verdict != "NotEnoughData"]
    if not judged:
        return DatasetDrift("NotEnoughData", [], None)
    drifted = [f.feature for f in judged if f.verdict == "Drift"]
    share = len(drifted) / len(judged)
    return DatasetDrift("Drift" if share > share_threshold else "NoDrift", drifted, share)
