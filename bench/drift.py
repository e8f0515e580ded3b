"""Our drift detection against Evidently's DataDriftPreset, side by side in one run, on the same data.

200,000 rows x 20 features (14 numeric, 6 categorical) with known drifted columns: the time from raw rows to
decisions (ours also from histograms, which is what the operator does: pods already export histograms), whether both
name the same drifted columns, and the false-alarm rate of both on null categorical data.

Run: .venv/bin/python bench/drift.py   (Evidently is installed on first use into ~/.cache/modelops, in a virtualenv
of its own: Evidently 0.7.23 does not import with the project's pandas 3.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# The drift statistics load SciPy on their first call; it is loaded here, before any clock starts, as Evidently's
# side imports its own libraries before it times anything.
import scipy.spatial.distance
import scipy.stats  # noqa: F401

from modelops.devcluster.toolchain import cache_root
from modelops.drift import dataset_drift, feature_drift
from modelops.runtime.baseline import summarize
from modelops.runtime.telemetry import histogram

HERE = Path(__file__).resolve().parent
ROWS, NUMERIC, CATEGORICAL = 200_000, 14, 6
DRIFTED = {"num_0", "num_1", "num_2", "cat_0"}
NULL_TRIALS, NULL_REFERENCE, NULL_CURRENT = 200, 1000, 500
UV = cache_root() / "uv-0.13.8" / "bin" / "uv"


def evidently_python() -> Path:
    venv = cache_root() / "bench-evidently-0.7.23"
    python = venv / "bin" / "python"
    if not python.exists():
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run([str(UV), "venv", "-q", "--python", "python3.11", str(venv)], check=True, env=env)
        subprocess.run(
            [str(UV), "pip", "install", "-q", "--python", str(python), "-r", str(HERE / "evidently.lock")],
            check=True,
            env=env,
        )
    return python


def evidently(task: dict) -> dict:
    done = subprocess.run(
        [str(evidently_python()), str(HERE / "evidently_side.py"), json.dumps(task)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthetic(rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    columns = {}
    for i in range(NUMERIC):
        shift = 0.5 if shifted and f"num_{i}" in DRIFTED else 0.0
        columns[f"num_{i}"] = rng.normal(10 * i + shift * (1 + i), 1 + i, ROWS)
    for i in range(CATEGORICAL):
        k = (3, 5, 10, 20, 50, 8)[i]
        weights = np.linspace(1, 2, k) / np.linspace(1, 2, k).sum()
        if shifted and f"cat_{i}" in DRIFTED:
            weights = weights[::-1]
        columns[f"cat_{i}"] = rng.choice([f"c{j}" for j in range(k)], ROWS, p=weights)
    return pd.DataFrame(columns)


def ours_from_histograms(summaries: dict, live: dict) -> list[str]:
    results = []
    for name, summary in summaries.items():
        labels = (summary["categories"] + ["__other__"]) if summary["kind"] == "categorical" else None
        if labels is None:
            from modelops.runtime.telemetry import bin_label

            labels = [bin_label(e) for e in summary["edges"]] + ["+Inf"]
        counts = np.asarray([live[name].get(b, 0) for b in labels], dtype=float)
        method = "psi" if summary["kind"] == "numeric" else "chiSquared"
        results.append(
            feature_drift(
                name, np.asarray(summary["counts"]), counts, method=method, edges=summary.get("edges"), min_samples=200
            )
        )
    return dataset_drift(results, 0.5).drifted


def main() -> None:
    rng = np.random.default_rng(42)
    reference, current = synthetic(rng, False), synthetic(rng, True)
    kinds = {c: ("number" if c.startswith("num") else "category") for c in reference.columns}

    started = time.perf_counter()
    summaries = {c: summarize(c, reference[c], kinds[c]) for c in reference.columns}
    live = {c: histogram(current[c], summaries[c]) for c in current.columns}
    histograms_ready = time.perf_counter()
    ours = ours_from_histograms(summaries, live)
    finished = time.perf_counter()
    ours_raw_s, ours_hist_s = finished - started, finished - histograms_ready

    with tempfile.TemporaryDirectory() as tmp:
        reference.to_parquet(f"{tmp}/reference.parquet")
        current.to_parquet(f"{tmp}/current.parquet")
        theirs = evidently(
            {
                "kind": "drift",
                "reference": f"{tmp}/reference.parquet",
                "current": f"{tmp}/current.parquet",
                "numeric": [c for c in reference.columns if c.startswith("num")],
                "categorical": [c for c in reference.columns if c.startswith("cat")],
            }
        )
        false_alarms: dict[str, dict[str, float]] = {"ours": {}, "evidently": {}}
        for k in (3, 50):
            trial_rng = np.random.default_rng(k)
            weights = trial_rng.dirichlet(np.ones(k) * 2)
            categories = np.array([f"c{j}" for j in range(k)])
            rows, alarms = [], 0
            for trial in range(NULL_TRIALS):
                ref = trial_rng.choice(categories, NULL_REFERENCE, p=weights)
                cur = trial_rng.choice(categories, NULL_CURRENT, p=weights)
                counts_ref = np.array([(ref == c).sum() for c in categories])
                counts_cur = np.array([(cur == c).sum() for c in categories])
                alarms += (
                    feature_drift("v", counts_ref, counts_cur, method="chiSquared", min_samples=1).verdict == "Drift"
                )
                rows += [(trial, "reference", v) for v in ref] + [(trial, "current", v) for v in cur]
            pd.DataFrame(rows, columns=["trial", "side", "value"]).to_parquet(f"{tmp}/null-{k}.parquet")
            false_alarms["ours"][str(k)] = alarms / NULL_TRIALS
            false_alarms["evidently"][str(k)] = evidently({"kind": "null", "trials": f"{tmp}/null-{k}.parquet"})["rate"]

    same = set(ours) == set(theirs["drifted"])
    print(f"{ROWS:,} rows x {NUMERIC + CATEGORICAL} features; drifted by construction: {sorted(DRIFTED)}")
    print(f"{'':<40} {'seconds':>8} {'speedup':>8}  drifted columns")
    print(
        f"{'Evidently DataDriftPreset (raw rows)':<40} {theirs['seconds']:>8.2f} {1.0:>8.1f}  {sorted(theirs['drifted'])}"
    )
    print(
        f"{'ours, raw rows -> decisions':<40} {ours_raw_s:>8.2f} {theirs['seconds'] / ours_raw_s:>8.1f}  {sorted(ours)}"
    )
    print(f"{'ours, histograms -> decisions':<40} {ours_hist_s:>8.4f} {theirs['seconds'] / ours_hist_s:>8.0f}")
    print(
        f"false alarms on null categorical data ({NULL_TRIALS} trials, reference {NULL_REFERENCE}, current "
        f"{NULL_CURRENT}; each tool's default test): ours {false_alarms['ours']}, Evidently {false_alarms['evidently']}"
    )
    print(
        json.dumps(
            {
                "rows": ROWS,
                "ours_s": round(ours_raw_s, 3),
                "evidently_s": round(theirs["seconds"], 3),
                "speedup": round(theirs["seconds"] / ours_raw_s, 1),
                "ours_histograms_s": round(ours_hist_s, 4),
                "same_columns": same,
                "false_alarm_ours": false_alarms["ours"],
                "false_alarm_evidently": false_alarms["evidently"],
            }
        )
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
