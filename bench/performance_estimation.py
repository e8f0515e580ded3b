"""Our label-free accuracy estimate against NannyML's CBPE, side by side in one run, on the same windows.

A classifier is trained on synthetic data (scikit-learn's make_classification), calibrated on a held-out split as a
build does by default (Platt's sigmoid; NannyML calibrates with its own default, isotonic regression), and then sees
windows of traffic under a growing covariate shift (rows drawn ever closer to its decision boundary:
P(x) moves, P(y|x) does not), which lowers its accuracy. Per window: our estimate from aggregates alone (per
predicted class, the sum of each class's calibrated probability: what a server exports), NannyML's CBPE from raw
rows (fitted on the same held-out split, with the model's uncalibrated scores, as a NannyML user would give them),
and the accuracy the labels then show. Five seeds, each a new data set, model and windows. Printed: the first seed's
windows, both errors per seed and their means, and both times; the last line is JSON.

Run: .venv/bin/python bench/performance_estimation.py   (NannyML is installed on first use into ~/.cache/modelops,
in a virtualenv of its own: NannyML 0.13.1 needs pandas < 3.)
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
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
#: Data sets, models and windows drawn anew for each: one seed's error says little.
SEEDS = (11, 1, 2, 3, 4)


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


@dataclass(frozen=True)
class Run:
    """One seed's windows: the accuracy each estimator estimated and the accuracy the labels then showed."""

    seed: int
    realized: list[float]
    ours: list[float]
    realized_theirs: list[float]
    theirs: list[float]
    ours_s: float
    theirs_s: float
    theirs_fit_s: float

    def mae(self, estimates: list[float], realized: list[float]) -> float:
        return float(np.mean(np.abs(np.array(estimates) - realized)))


def run(seed: int) -> Run:
    rng = np.random.default_rng(seed)
    x, y = make_classification(
        TRAIN + HOLDOUT + POOL, n_features=12, n_informative=6, class_sep=0.8, flip_y=0.02, random_state=seed
    )
    x_train, y_train = x[:TRAIN], y[:TRAIN]
    x_hold, y_hold = x[TRAIN : TRAIN + HOLDOUT], y[TRAIN : TRAIN + HOLDOUT]
    x_pool, y_pool = x[TRAIN + HOLDOUT :], y[TRAIN + HOLDOUT :]
    model = HistGradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    # as a build calibrates by default (evaluation.calibration: Sigmoid), on the held-out split
    calibrator = CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid").fit(x_hold, y_hold)

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
    return Run(
        seed, realized, estimates, realized_theirs, theirs["estimates"], ours_s, theirs["estimate_s"], theirs["fit_s"]
    )


def main() -> None:
    runs = [run(seed) for seed in SEEDS]
    first = runs[0]
    print(
        f"{WINDOWS} windows of {WINDOW:,} rows under a growing covariate shift; accuracy per window (seed {first.seed})"
    )
    print(f"{'shift':>6} {'realized':>9} {'ours':>7} {'realized*':>10} {'NannyML':>8}")
    rows = zip(SHIFTS, first.realized, first.ours, first.realized_theirs, first.theirs, strict=True)
    for shift, r, e, rt, t in rows:
        print(f"{shift:>6.1f} {r:>9.4f} {e:>7.4f} {rt:>10.4f} {t:>8.4f}")
    print("* NannyML judges the uncalibrated model's predictions at 0.5, whose accuracy is its own realized column")
    print(f"\nmean absolute estimation error per seed ({len(SEEDS)} data sets, {WINDOWS} windows each):")
    for r in runs:
        print(
            f"  seed {r.seed:>2}: ours {r.mae(r.ours, r.realized):.4f}   NannyML CBPE {r.mae(r.theirs, r.realized_theirs):.4f}"
        )
    ours_mae = float(np.mean([r.mae(r.ours, r.realized) for r in runs]))
    nannyml_mae = float(np.mean([r.mae(r.theirs, r.realized_theirs) for r in runs]))
    ours_s, theirs_s = sum(r.ours_s for r in runs), sum(r.theirs_s for r in runs)
    print(f"mean: ours {ours_mae:.4f}, NannyML CBPE {nannyml_mae:.4f} ({nannyml_mae / ours_mae:.1f}x ours)")
    print(
        f"seconds for every window's estimate: ours {ours_s:.4f} (calibrated probabilities -> sums -> metrics), "
        f"NannyML {theirs_s:.4f} (+ {sum(r.theirs_fit_s for r in runs):.2f} fitting), {theirs_s / ours_s:.0f}x"
    )
    print(
        json.dumps(
            {
                "windows": WINDOWS * len(runs),
                "seeds": len(runs),
                "ours_mae": round(ours_mae, 4),
                "nannyml_mae": round(nannyml_mae, 4),
                "ours_s": round(ours_s, 4),
                "nannyml_s": round(theirs_s, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
