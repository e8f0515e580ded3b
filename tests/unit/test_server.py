"""The serving runtime as a real process: the model's own predictions, 4xx on bad input, feature histograms
on the baseline's edges in /metrics."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from modelops.contract.serving import bin_label
from tests.support.server import serving
from tests.support.training import train_bundled


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("model")
    return folder, train_bundled(
        folder, "breast_cancer", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 20}
    )


@pytest.fixture(scope="module")
def server(trained: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(trained[1], tmp_path_factory.mktemp("server")) as url:
        yield url


def test_predictions_equal_the_models_own(trained: tuple[Path, dict], server: str, tmp_path: Path) -> None:
    import bentoml

    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).sample(50, random_state=1)
    answer = httpx.post(f"{server}/predict", json={"records": frame.to_dict(orient="records")}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "cancer" and body["version"] == "7"

    os.environ["BENTOML_HOME"] = str(tmp_path / "bentoml")
    local = bentoml.models.import_model(trained[1]["artifactUri"].removeprefix("file://"))
    own = bentoml.sklearn.load_model(local)
    assert body["predictions"] == own.predict(frame).tolist()
    assert len(body["probabilities"]) == 50


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"records": [{"mean radius": 1.0}]}, "record 0: missing feature(s) 'mean texture'"),
        ({"records": []}, "records: send at least one record"),
        ({"records": "not a list"}, ""),
    ],
)
def test_bad_input_is_a_4xx_that_says_what_is_wrong(server: str, payload: dict, expected: str) -> None:
    answer = httpx.post(f"{server}/predict", json=payload, timeout=30)
    assert 400 <= answer.status_code < 500
    assert expected in answer.text


def test_wrong_types_and_unknown_features_are_named(server: str) -> None:
    record = dict.fromkeys(load_breast_cancer().feature_names, 1.0)
    record["mean radius"] = "large"
    record["favourite colour"] = "blue"
    answer = httpx.post(f"{server}/predict", json={"records": [record]}, timeout=30)
    assert answer.status_code == 400
    assert "feature 'mean radius' must be a number" in answer.text
    assert "unknown feature(s) 'favourite colour'" in answer.text


def test_metrics_hold_feature_histograms_on_the_baseline_edges(trained: tuple[Path, dict], server: str) -> None:
    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(100)
    httpx.post(f"{server}/predict", json={"records": frame.to_dict(orient="records")}, timeout=30)
    httpx.post(f"{server}/predict", json={"records": [{"mean radius": 1.0}]}, timeout=30)
    baseline = json.loads(Path(trained[1]["baselineUri"].removeprefix("file://")).read_text())
    radius = next(f for f in baseline["features"] if f["name"] == "mean radius")
    text = httpx.get(f"{server}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("modelops_feature_observations_total{")]
    bins = {
        line.split('bin="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if 'feature="mean radius"' in line
    }
    assert set(bins) <= {bin_label(e) for e in radius["edges"]} | {"+Inf"}
    assert sum(bins.values()) >= 100
    assert 'modelops_requests_total{model="cancer",version="7"}' in text
    assert "modelops_request_latency_seconds_bucket" in text
    assert 'modelops_request_errors_total{kind="bad_input",model="cancer",version="7"}' in text
    assert "modelops_prediction_observations_total" in text
