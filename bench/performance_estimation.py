"""Our label-free accuracy estimate against NannyML's CBPE, side by side in one run, on the same windows.

A classifier is trained on synthetic data (scikit-learn's make_classification), calibrated on a held-out split,
and then sees windows of traffic under a growing covariate shift (rows drawn ever closer to its decision boundary:
P(x) moves, P(y|x) does not), which lowers its accuracy. Per window: our estimate from aggregates alone (per
predicted class, the sum of each class's calibrated probability: what a server exports), NannyML's CBPE from raw
rows (fitted on the same held-out split, with the model's uncalibrated scores, as a NannyML user would give them),
and the accuracy the labels then show. Printed: both errors and both times; the last line is JSON.

Run: .venv/bin/python bench/performance_estimation.py   (NannyML is installed on first use into ~/.cache/modelops,
in a virtualenv of its own: NannyML 0.13.1 needs pandas < 3.)
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator

from modelops.devcluster.toolchain import cache_root
from modelops.performance import classification

HERE = Path(__file__).resolve().parent
UV = cache_root() / "uv-0.13.8" / "bin" / "uv"
TRAIN, HOLDOUT, POOL = 20_000, 10_000, 200_000
WINDOWS, WINDOW = 10, 5_000
#: How strongly each window prefers rows near the decision boundary (0: no shift).
SHIFTS = np.linspace(0, 6, WINDOWS)


def nannyml_python() -> Path:
    venv = cache_root() / "bench-nannyml-0.13.1"
    python = venv / "bin" / "python"
    if not python.exists():
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run([str(UV), "venv", "-q", "--python", "python3.11", str(venv)], check=True, env=env)
        subprocess.run(
            [str(UV), "pip", "install", "-q", "--python", str(python), "-r", str(HERE / "nannyml.lock")],
            check=True,
            env=env,
        )
    return python


def nannyml(task: dict) -> dict:
    done = subprocess.run(
        [str(nannyml_python()), str(HERE / "nannyml_side.py"), json.dumps(task)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def ours(calibrated: np.ndarray) -> float:
    """The estimate from what a server exports for the window: per predicted class, the probabilities' sums."""
    predicted = calibrated.argmax(axis=1)
    sums = np.array([calibrated[predicted == c].sum(axis=0) for c in range(calibrated.shape[1])])
    accuracy = classification(sums).accuracy
    assert accuracy is not None
    return accuracy


def main() -> None:
    rng = np.random.default_rng(11)
    x, y = make_classification(
        TRAIN + HOLDOUT + POOL, n_features=12, n_informative=6, class_sep=0.8, flip_y=0.02, random_state=11
    )
    x_train, y_train = x[:TRAIN], y[:TRAIN]
    x_hold, y_hold = x[TRAIN : TRAIN + HOLDOUT], y[TRAIN : TRAIN + HOLDOUT]
    x_pool, y_pool = x[TRAIN + HOLDOUT :], y[TRAIN + HOLDOUT :]
    model = HistGradientBoostingClassifier(random_state=11).fit(x_train, y_train)
    calibrator = CalibratedClassifierCV(FrozenEstimator(model), method="isotonic").fit(x_hold, y_hold)

    margin = np.abs(model.predict_proba(x_pool)[:, 1] - 0.5)  # a function of x alone: a covariate shift
    windows = []
    for shift in SHIFTS:
        weights = np.exp(-shift * 10 * margin)
        windows.append(rng.choice(len(x_pool), WINDOW, replace=False, p=weights / weights.sum()))

    probabilities = [calibrator.predict_proba(x_pool[w]) for w in windows]  # the server computes these anyway
    started = time.perf_counter()
    estimates = [ours(p) for p in probabilities]
    ours_s = time.perf_counter() - started
    realized = [float((p.argmax(axis=1) == y_pool[w]).mean()) for p, w in zip(probabilities, windows, strict=True)]

    def frame(rows: np.ndarray, labels: np.ndarray | None) -> pd.DataFrame:
        scores = model.predict_proba(rows)[:, 1]
        out = pd.DataFrame({"score": scores, "prediction": (scores >= 0.5).astype(int)})
        if labels is not None:
            out["label"] = labels
        return out

    analysis_rows = np.concatenate([x_pool[w] for w in windows])
    realized_theirs = [float((frame(x_pool[w], None)["prediction"].to_numpy() == y_pool[w]).mean()) for w in windows]
    with tempfile.TemporaryDirectory() as tmp:
        frame(x_hold, y_hold).to_parquet(f"{tmp}/reference.parquet")
        frame(analysis_rows, None).to_parquet(f"{tmp}/analysis.parquet")
        theirs = nannyml({"reference": f"{tmp}/reference.parquet", "analysis": f"{tmp}/analysis.parquet",
                          "window": WINDOW})  # fmt: skip

    ours_mae = float(np.mean(np.abs(np.array(estimates) - realized)))
    nannyml_mae = float(np.mean(np.abs(np.array(theirs["estimates"]) - realized_theirs)))
    print(f"{WINDOWS} windows of {WINDOW:,} rows under a growing covariate shift; accuracy per window")
    print(f"{'shift':>6} {'realized':>9} {'ours':>7} {'realized*':>10} {'NannyML':>8}")
    for shift, r, e, rt, t in zip(SHIFTS, realized, estimates, realized_theirs, theirs["estimates"], strict=True):
        print(f"{shift:>6.1f} {r:>9.4f} {e:>7.4f} {rt:>10.4f} {t:>8.4f}")
    print("* NannyML judges the uncalibrated model's predictions at 0.5, whose accuracy is its own realized column")
    print(f"mean absolute estimation error: ours {ours_mae:.4f}, NannyML CBPE {nannyml_mae:.4f}")
    print(
        f"seconds for all windows' estimates: ours {ours_s:.4f} (calibrated probabilities -> sums -> metrics), "
        f"NannyML {theirs['estimate_s']:.4f} (+ {theirs['fit_s']:.2f} fitting), {theirs['estimate_s'] / ours_s:.0f}x"
    )
    print(
        json.dumps(
            {
                "windows": WINDOWS,
                "ours_mae": round(ours_mae, 4),
                "nannyml_mae": round(nannyml_mae, 4),
                "ours_s": round(ours_s, 4),
                "nannyml_s": round(theirs["estimate_s"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
