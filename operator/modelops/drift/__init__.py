"""Drift statistics on histograms (numpy/scipy); depends on nothing else of the operator."""

from .decision import DEFAULT_THRESHOLDS, DatasetDrift, FeatureDrift, dataset_drift, feature_drift

__all__ = ["DEFAULT_THRESHOLDS", "DatasetDrift", "FeatureDrift", "dataset_drift", "feature_drift"]
