"""Evidently's side of bench/drift.py, run in its own virtualenv (Evidently 0.7.23 needs pandas < 3).

Reads the frames bench/drift.py wrote, runs Evidently's DataDriftPreset, prints JSON: seconds and drifted columns.
"""

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def drifted(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]) -> list[str]:
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
        current_data=Dataset.from_pandas(current, data_definition=definition),
    )
    out = []
    for metric in snapshot.dict()["metrics"]:
        name = metric.get("metric_name") or metric.get("metric_id") or ""
        if not name.startswith("ValueDrift("):
            continue
        fields = dict(part.split("=", 1) for part in name[len("ValueDrift(") : -1].split(","))
        threshold, value = float(fields["threshold"]), float(metric["value"])
        is_p_value = "p_value" in fields["method"]
        if (value < threshold) if is_p_value else (value >= threshold):
            out.append(fields["column"])
    return out


def main() -> None:
    task = json.loads(sys.argv[1])
    if task["kind"] == "drift":
        reference, current = pd.read_parquet(task["reference"]), pd.read_parquet(task["current"])
        started = time.perf_counter()
        columns = drifted(reference, current, task["numeric"], task["categorical"])
        print(json.dumps({"seconds": time.perf_counter() - started, "drifted": columns}))
    else:  # null trials: the share of trials in which the column is called drifted
        frame = pd.read_parquet(task["trials"])
        alarms = 0
        trials = sorted(frame["trial"].unique())
        for trial in trials:
            rows = frame[frame["trial"] == trial]
            reference = rows[rows["side"] == "reference"][["value"]]
            current = rows[rows["side"] == "current"][["value"]]
            alarms += bool(drifted(reference, current, [], ["value"]))
        print(json.dumps({"rate": alarms / len(trials)}))


if __name__ == "__main__":
    main()
