"""NannyML's side of bench/performance_estimation.py, run in its own virtualenv (NannyML 0.13 needs pandas < 3).

Reads the frames the bench wrote (reference: the held-out split with labels; analysis: the windows, without
labels), fits CBPE on the reference and estimates accuracy per window; prints JSON: the estimates and the seconds.
"""

import json
import sys
import time

import nannyml
import pandas as pd


def main() -> None:
    task = json.loads(sys.argv[1])
    reference, analysis = pd.read_parquet(task["reference"]), pd.read_parquet(task["analysis"])
    started = time.perf_counter()
    estimator = nannyml.CBPE(
        y_pred_proba="score",
        y_pred="prediction",
        y_true="label",
        metrics=["accuracy"],
        chunk_size=task["window"],
        problem_type="classification_binary",
    )
    estimator.fit(reference)
    fitted = time.perf_counter()
    result = estimator.estimate(analysis).filter(period="analysis").to_df()
    finished = time.perf_counter()
    estimates = [float(v) for v in result[("accuracy", "value")]]
    print(json.dumps({"estimates": estimates, "fit_s": fitted - started, "estimate_s": finished - fitted}))


if __name__ == "__main__":
    main()
