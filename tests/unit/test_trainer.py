"""The trainer as a real process: two bundled datasets, and a CSV with personal columns."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from modelops.contract.training import USER_ERROR_EXIT_CODE, TrainResult
from modelops.runtime.telemetry import category_label
from tests.support.training import bundled, customers, run_trainer

SALT = "pepper-for-tests"


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
    from modelops.contract.training import Feature

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


def test_a_slice_that_cannot_select_rows_names_its_field() -> None:
    from sklearn.dummy import DummyClassifier

    from modelops.contract.training import Slice
    from modelops.runtime.evaluation import EvaluationError, by_slice

    frame = pd.DataFrame({"age": range(40), "site": ["a", "b"] * 20})
    labels = pd.Series([0, 1] * 20)
    model = DummyClassifier().fit(frame, labels)
    hashed = Slice(name="site-a", column="site", values=["a"])
    with pytest.raises(EvaluationError, match=r"evaluation.slices\[site-a\].column: 'site' is hashed"):
        by_slice("classification", model, frame, labels, None, [hashed], ["site"])
    with pytest.raises(EvaluationError, match=r"evaluation.slices\[x\].column: 'zip' is not a feature"):
        by_slice("classification", model, frame, labels, None, [Slice(name="x", column="zip", min=1)], [])
    young = Slice(name="young", column="age", max=20)
    few = Slice(name="few", column="age", min=30)
    measured = by_slice("classification", model, frame, labels, ["accuracy"], [young, few], [])
    assert measured == {"young": {"accuracy": 0.5}, "few": {}}
