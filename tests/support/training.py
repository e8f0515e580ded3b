"""The trainer as a real process (`modelops train`, as the Job runs it), and the data the tests train it on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelops.contract.training import CONFIG_FILE_ENV, SALT_ENV, SIGNING_KEY_ENV, TrainResult


def run_trainer(
    tmp_path: Path, config: dict[str, Any], salt: str | None = None, signing_key: Path | None = None
) -> tuple[int, TrainResult, str]:
    """Run `modelops train` as the Job would, and return (exit code, result, everything it logged)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    termination = tmp_path / "termination-log"
    config_file = tmp_path / "train.json"  # as the Job's downward API volume holds it
    artifacts = f"file://{tmp_path}/artifacts/ns/m/b1"
    config_file.write_text(
        json.dumps({"build": "b1", "namespace": "ns", "model": "m", "artifactsFolder": artifacts, **config})
    )
    env = {
        **os.environ,
        CONFIG_FILE_ENV: str(config_file),
        "MODELOPS_TERMINATION_LOG": str(termination),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    if salt:
        env[SALT_ENV] = salt
    if signing_key:
        env[SIGNING_KEY_ENV] = str(signing_key)
    done = subprocess.run(
        [sys.executable, "-m", "modelops.cli", "train"], env=env, capture_output=True, text=True, timeout=300
    )
    return done.returncode, TrainResult.from_message(termination.read_text()), done.stdout + done.stderr


def bundled(dataset: str, estimator: str, params: dict, task: str = "classification") -> dict[str, Any]:
    """The trainer's configuration for a dataset bundled with scikit-learn (its label column is `target`)."""
    return {
        "task": task,
        "datasetUri": f"sklearn://{dataset}",
        "target": "target",
        "estimator": estimator,
        "params": params,
    }


def train_bundled(
    folder: Path, dataset: str, estimator: str, params: dict, calibration: str = "Sigmoid"
) -> dict[str, Any]:
    """A trained classifier's result (artifact URI and digest, baseline, metrics), for tests that serve it."""
    code, result, _ = run_trainer(folder, {**bundled(dataset, estimator, params), "calibration": calibration})
    assert code == 0, result.error
    return result.model_dump(by_alias=True)


def customers(path: Path, rows: int = 400) -> Path:
    """A customers table with personal columns (ids, e-mail addresses) and a `churned` label, written as CSV."""
    rng = np.random.default_rng(7)
    age = rng.integers(18, 90, rows)
    income = rng.normal(50_000, 15_000, rows).round(2)
    frame = pd.DataFrame(
        {
            "customer_id": [f"CUST-{i:05d}" for i in range(rows)],
            "email": [f"person{i}@example.org" for i in range(rows)],
            "age": age,
            "income": income,
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "churned": ((age < 30) ^ (income > 60_000)).astype(int),
        }
    )
    frame.to_csv(path, index=False)
    return path
