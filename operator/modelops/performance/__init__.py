"""Model quality from aggregates alone: performance estimated from calibrated scores before any label arrives
(confidence-based performance estimation), and realized from late labels; no record is needed, only counts."""

from .estimate import ClassificationMetrics, RegressionMetrics, binned_roc_auc, classification, regression

__all__ = ["ClassificationMetrics", "RegressionMetrics", "binned_roc_auc", "classification", "regression"]
