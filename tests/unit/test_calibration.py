"""Calibration at build: a classifier's probabilities calibrated on held-out rows are closer to how often they are
right; the trainer calibrates on half the held-out rows and measures on the other half; too few rows to calibrate
fail the build naming the field (and no class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.naive_bayes import GaussianNB

from modelops.contract.training import USER_ERROR_EXIT_CODE
from modelops.runtime.calibration import CalibrationError, calibrate
from tests.support.training import bundled, run_trainer


def split() -> tuple[pd.DataFrame, ...]:
    x, y = make_classification(6000, n_features=8, n_informative=4, n_redundant=4, random_state=5)
    frame, target = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)]), pd.Series(y)
    return frame[:3000], target[:3000], frame[3000:4500], target[3000:4500], frame[4500:], target[4500:]


def calibration_error(labels: pd.Series, scores: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: over score deciles, how far the mean score is from the share of positives."""
    which = np.minimum((scores * bins).astype(int), bins - 1)
    gaps = [abs(scores[which == b].mean() - labels[which == b].mean()) * (which == b).mean() for b in set(which)]
    return float(sum(gaps))


@pytest.mark.parametrize("method", ["Sigmoid", "Isotonic"])
def test_calibrated_probabilities_are_closer_to_how_often_they_are_right(method: str) -> None:
    x_fit, y_fit, x_calibrate, y_calibrate, x_test, y_test = split()
    model = LogisticRegression(C=1e-4).fit(x_fit, y_fit)  # regularised hard: every probability near one half
    calibrated = calibrate(model, method, x_calibrate, y_calibrate)  # type: ignore[arg-type]
    raw, better = model.predict_proba(x_test)[:, 1], calibrated.predict_proba(x_test)[:, 1]
    assert calibration_error(y_test, better) < 0.05 < 0.1 < calibration_error(y_test, raw)
    assert brier_score_loss(y_test, better) < brier_score_loss(y_test, raw)
    assert (calibrated.predict(x_test) == calibrated.predict_proba(x_test).argmax(axis=1)).all()


def test_none_leaves_the_model_as_it_is() -> None:
    x_fit, y_fit, x_calibrate, y_calibrate, *_ = split()
    model = GaussianNB().fit(x_fit, y_fit)
    assert calibrate(model, "None", x_calibrate, y_calibrate) is model


def test_too_few_rows_of_a_class_to_calibrate_name_the_field_not_the_class() -> None:
    x_fit, y_fit, x_calibrate, y_calibrate, *_ = split()
    model = GaussianNB().fit(x_fit, y_fit)
    with pytest.raises(CalibrationError, match=r"evaluation\.calibration") as refused:
        calibrate(model, "Sigmoid", x_calibrate[y_calibrate == 0].head(30), y_calibrate[y_calibrate == 0].head(30))
    assert "fewer than 2 rows of 1 class(es)" in str(refused.value)


def test_the_trainer_calibrates_on_half_the_held_out_rows_and_measures_on_the_other(tmp_path: Path) -> None:
    config = bundled("breast_cancer", "sklearn.linear_model.LogisticRegression", {"max_iter": 3000})
    code, result, log = run_trainer(tmp_path / "calibrated", config)
    assert code == 0, result.error
    assert "calibrated the probabilities (Sigmoid) on 57 held-out rows" in log  # 114 held out: 57 and 57
    assert result.metrics["accuracy"] > 0.9 and np.isfinite(result.metrics["logLoss"])
    code, _, log = run_trainer(tmp_path / "plain", {**config, "calibration": "None"})
    assert code == 0 and "calibrated" not in log


def test_a_dataset_too_small_to_calibrate_fails_the_build_naming_the_field(tmp_path: Path) -> None:
    config = {**bundled("iris", "sklearn.linear_model.LogisticRegression", {"max_iter": 3000}), "testSize": 0.05}
    code, result, _ = run_trainer(tmp_path, config)
    assert code == USER_ERROR_EXIT_CODE and result.error is not None
    assert result.error.startswith("evaluation.calibration:") and "testSize" in result.error
