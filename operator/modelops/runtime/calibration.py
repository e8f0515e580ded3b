"""A classifier's probabilities calibrated on held-out rows it was not fitted on.

Calibrated, a probability of 0.8 is right four times in five: what lets the monitor estimate accuracy from the
probabilities alone, before a label arrives. The fitted model is frozen and a calibrator is fitted on top of it
(scikit-learn's `CalibratedClassifierCV` over a `FrozenEstimator`), so the model itself is not fitted again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelops.contract.training import Calibration


class CalibrationError(ValueError):
    """The calibration asked for cannot be made; the message names the field."""


#: Fewest held-out rows of each class the calibration half must hold.
MIN_PER_CLASS = 2


def calibrate(model: Any, method: Calibration, x: pd.DataFrame, y: pd.Series) -> Any:
    """The model with calibrated `predict_proba` (and `predict` the most probable class), or the model itself with
    `None` or when it gives no probabilities or scores to calibrate."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    if method == "None" or not (hasattr(model, "predict_proba") or hasattr(model, "decision_function")):
        return model
    counts = y.value_counts()
    missing = sorted(str(c) for c in getattr(model, "classes_", []) if counts.get(c, 0) < MIN_PER_CLASS)
    if missing:
        raise CalibrationError(
            f"evaluation.calibration: the held-out rows used to calibrate hold fewer than {MIN_PER_CLASS} rows of "
            f"{len(missing)} class(es): raise evaluation.testSize, or set evaluation.calibration to None"
        )
    return CalibratedClassifierCV(FrozenEstimator(model), method=method.lower()).fit(x, y)
