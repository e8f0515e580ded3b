"""The trainer as a real process: two bundled datasets, and a CSV with personal columns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.runtime.contract import CONFIG_FILE_ENV, SALT_ENV, USER_ERROR_EXIT_CODE, TrainResult
from modelops.runtime.telemetry import category_label

SALT = "pepper-for-tests"


def run_trainer(tmp_path: Path, config: dict[str, Any], salt: str | None = None) -> tuple[int, TrainResult, str]:
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


def train_bundled(folder: Path, dataset: str, estimator: str, params: dict) -> dict[str, Any]:
    """A trained classifier's result (artifact URI and digest, baseline, metrics), for tests that serve it."""
    code, result, _ = run_trainer(folder, bundled(dataset, estimator, params))
    assert code == 0, result.error
    return result.model_dump(by_alias=True)


def everything_written(tmp_path: Path) -> bytes:
    """Every byte the trainer left behind: artifacts (and what the model archive holds), BentoML's store."""
    blobs = []
    for path in list(tmp_path.rglob("*")):
        if path.suffix == ".bentomodel":
            unpacked = path.with_suffix(".unpacked")
            shutil.unpack_archive(path, unpacked, format="tar" if tarfile.is_tarfile(path) else "zip")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            blobs.append(path.read_bytes())
    return b"\n".join(blobs)


def test_classification_on_a_bundled_dataset(tmp_path: Path) -> None:
    code, result, _ = run_trainer(
        tmp_path, bundled("breast_cancer", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 30})
    )
    assert code == 0, result.error
    assert result.metrics["accuracy"] > 0.9 and 0.9 < result.metrics["rocAuc"] <= 1.0
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1", "rocAuc", "logLoss"}
    assert result.rows == 569 and len(result.features) == 30
    assert Path(result.artifact_uri.removeprefix("file://")).is_file()
    baseline = json.loads(Path(result.baseline_uri.removeprefix("file://")).read_text())
    radius = next(f for f in baseline["features"] if f["name"] == "mean radius")
    assert radius["kind"] == "numeric" and sum(radius["counts"]) == 569
    assert len(radius["counts"]) == len(radius["edges"]) + 1
    assert baseline["prediction"]["kind"] == "categorical"


def test_regression_on_a_bundled_dataset(tmp_path: Path) -> None:
    code, result, _ = run_trainer(
        tmp_path, bundled("diabetes", "sklearn.linear_model.Ridge", {"alpha": 0.1}, task="regression")
    )
    assert code == 0, result.error
    assert set(result.metrics) == {"r2", "mae", "rmse", "mape"}
    assert 0.3 < result.metrics["r2"] < 0.7  # diabetes is a hard dataset; a linear model explains about half
    assert result.metrics["rmse"] > result.metrics["mae"] > 0


def customers(path: Path, rows: int = 400) -> Path:
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


PERSONAL = {
    "task": "classification",
    "target": "churned",
    "drop": ["email"],
    "hash": ["customer_id"],
    "estimator": "sklearn.tree.DecisionTreeClassifier",
    "params": {"max_depth": 4},
    "columns": [
        {"name": "age", "type": "integer", "minimum": 18, "maximum": 120},
        {"name": "plan", "type": "category", "allowedValues": ["basic", "plus", "pro"]},
    ],
}


def test_personal_data_never_leaves_the_trainer(tmp_path: Path) -> None:
    data = customers(tmp_path.parent / f"{tmp_path.name}-customers.csv")
    code, result, logged = run_trainer(tmp_path, {**PERSONAL, "datasetUri": f"file://{data}"}, salt=SALT)
    assert code == 0, result.error
    written = everything_written(tmp_path) + logged.encode() + result.to_message().encode()
    assert b"@example.org" not in written, "an e-mail address leaked"
    assert b"CUST-0" not in written, "a raw customer id leaked"
    assert SALT.encode() not in written, "the salt leaked"
    assert "email" not in {f.name for f in result.features}
    assert "customer_id" in {f.name for f in result.features}, "hashed ids stay usable (joinable)"
    assert result.unprotected is None, "every personal column is covered by a rule"
    baseline = json.loads(Path(result.baseline_uri.removeprefix("file://")).read_text())
    plan = next(f for f in baseline["features"] if f["name"] == "plan")
    assert sorted(plan["categories"]) == sorted(
        category_label(p, bytes.fromhex(plan["key"])) for p in ("basic", "plus", "pro")
    )
    assert b"basic" not in Path(result.baseline_uri.removeprefix("file://")).read_bytes(), "categories are keyed labels"


def test_hashing_without_a_salt_is_refused(tmp_path: Path) -> None:
    data = customers(tmp_path / "customers.csv")
    code, result, _ = run_trainer(tmp_path / "out", {**PERSONAL, "datasetUri": f"file://{data}"})
    assert code == USER_ERROR_EXIT_CODE
    assert "privacy.saltSecretRef" in result.error


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ({"name": "age", "type": "integer", "minimum": 18, "maximum": 60}, "column 'age': "),
        ({"name": "plan", "type": "category", "allowedValues": ["basic"]}, "column 'plan': "),
        ({"name": "missing", "type": "number"}, "column 'missing': declared but not in the dataset"),
    ],
)
def test_a_broken_rule_fails_naming_the_column(tmp_path: Path, column: dict, expected: str) -> None:
    data = customers(tmp_path / "customers.csv")
    config = {**PERSONAL, "datasetUri": f"file://{data}", "columns": [column]}
    code, result, logged = run_trainer(tmp_path / "out", config, salt=SALT)
    assert code == USER_ERROR_EXIT_CODE
    assert result.error.startswith("data validation failed") and expected in result.error
    assert "@example.org" not in logged + result.error


def test_result_fits_the_termination_message() -> None:
    from modelops.runtime.contract import Feature

    wide = TrainResult(
        ok=True, metrics={"accuracy": 1.0}, features=[Feature(name=f"f{i:04d}", type="number") for i in range(500)]
    )
    message = wide.to_message()
    assert len(message.encode()) <= 4096 and json.loads(message)["metrics"] == {"accuracy": 1.0}
    long_error = TrainResult(ok=False, error="x" * 10_000).to_message()
    assert len(long_error.encode()) <= 4096


def test_columns_that_look_personal_are_named_when_no_rule_covers_them(tmp_path: Path) -> None:
    from modelops.runtime.privacy import unprotected

    frame = pd.read_csv(customers(tmp_path / "customers.csv"))
    frame["phone"] = [f"+44 20 7946 {i:04d}" for i in range(len(frame))]
    found = {c.name: c.looks_like for c in unprotected(frame, {"churned"})}
    assert found == {"customer_id": "identifiers", "email": "e-mail addresses", "phone": "phone numbers"}
    assert unprotected(frame, {"churned", "customer_id", "email", "phone"}) == []


def test_a_library_error_quoting_data_is_masked(tmp_path: Path) -> None:
    data = customers(tmp_path / "customers.csv")
    config = {"task": "regression", "datasetUri": f"file://{data}", "target": "email"}
    code, result, logged = run_trainer(
        tmp_path / "out", {**config, "estimator": "sklearn.linear_model.LinearRegression"}
    )
    assert code == USER_ERROR_EXIT_CODE and "could not convert string to float: <redacted>" in result.error
    assert "@example.org" not in logged + result.error
