"""The serving runtime as a real process: the model's own predictions, 4xx on bad input, feature histograms
on the baseline's edges in /metrics; concurrent requests batched into one model pass, each caller getting its own
answer; and what a ModelDeployment tells its servers of batching and workers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

from modelops.api.v1alpha1 import ModelDeployment
from modelops.contract import serving as wire
from modelops.contract.serving import bin_label
from modelops.resources import modeldeployment as children
from modelops.runtime import serve
from modelops.runtime.baseline import baseline
from modelops.runtime.telemetry import BatchHistograms, histogram
from tests.support.objects import MODEL, NAMESPACE
from tests.support.objects import version as model_version
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


def own_model(result: dict, home: Path) -> Any:
    """The trained model, loaded here (from this process's model store: BentoML reads its home once)."""
    import bentoml

    os.environ.setdefault("BENTOML_HOME", str(home / "bentoml"))
    return bentoml.sklearn.load_model(serve.fetch(result["artifactUri"], result["artifactDigest"]))


def metric_bins(text: str, family: str, feature: str) -> dict[str, float]:
    """One feature's series of `family` in a /metrics text, by bin."""
    return {
        line.split('bin="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{family}_total{{") and f'feature="{feature}"' in line
    }


def test_concurrent_requests_are_batched_and_each_caller_gets_its_own_answer(
    trained: tuple[Path, dict], server: str, tmp_path: Path
) -> None:
    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).sample(120, random_state=3)
    before = httpx.get(f"{server}/metrics", timeout=10).text
    parts = [frame.iloc[i : i + 1 + i % 3] for i in range(0, 40)]  # 1 to 3 records each, overlapping

    def call(i: int) -> httpx.Response:
        records = parts[i].to_dict(orient="records")
        return httpx.post(
            f"{server}/predict", json={"records": records}, headers={"X-Request-Id": f"caller-{i}"}, timeout=60
        )

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(len(parts))))

    own = own_model(trained[1], tmp_path)
    for i, answer in enumerate(answers):
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == "application/json"
        body = answer.json()
        assert body["requestId"] == answer.headers["X-Request-Id"] == f"caller-{i}"
        assert body["predictions"] == own.predict(parts[i]).tolist()
        assert np.allclose(body["probabilities"], own.predict_proba(parts[i]), atol=1e-6)

    # the batches' histograms hold what counting each request's records on its own gives
    after = httpx.get(f"{server}/metrics", timeout=10).text
    summaries = json.loads(Path(trained[1]["baselineUri"].removeprefix("file://")).read_text())["features"]
    posted = pd.concat(parts)
    for summary in summaries[:5]:
        name = summary["name"]
        old, new = (
            metric_bins(before, "modelops_feature_observations", name),
            metric_bins(after, "modelops_feature_observations", name),
        )
        added = {b: new[b] - old.get(b, 0.0) for b in new if new[b] != old.get(b, 0.0)}
        assert added == histogram(posted[name], summary)


def test_predictions_read_from_the_probabilities_are_the_models_own(trained: tuple[Path, dict], tmp_path: Path) -> None:
    """A served classifier runs once per batch: its prediction is the class of highest probability, as its own
    `predict` says (the trainer's calibrated model; an uncalibrated pipeline of three classes)."""
    iris = train_bundled(
        tmp_path / "iris", "iris", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 10}, "None"
    )
    cases = [(trained[1], load_breast_cancer(as_frame=True).frame), (iris, load_iris(as_frame=True).frame)]
    for result, data in cases:
        model = own_model(result, tmp_path)
        rows = data.drop(columns=["target"])
        assert serve.predicts_most_probable(model)
        assert (model.classes_[model.predict_proba(rows).argmax(axis=1)] == model.predict(rows)).all()


def test_batch_histograms_count_what_histogram_counts(trained: tuple[Path, dict]) -> None:
    rng = np.random.default_rng(0)
    rows = 3000
    training = pd.DataFrame(
        {
            "amount": rng.normal(size=rows),
            "count": rng.integers(0, 5, rows).astype(float),
            "plan": rng.choice(["basic", "plus", "pro", None], rows),
            "flag": rng.choice([True, False], rows),
        }
    )
    training.loc[::7, "amount"] = np.nan
    types = {"amount": "number", "count": "integer", "plan": "category", "flag": "boolean"}
    mixed = baseline(training, types, rng.choice(["yes", "no"], rows), "classification")
    live = training.sample(500, random_state=1).reset_index(drop=True)
    live.loc[::3, "amount"] = np.inf
    live.loc[::5, "plan"] = "enterprise"  # not among the baseline's categories
    cancer = json.loads(Path(trained[1]["baselineUri"].removeprefix("file://")).read_text())
    cancer_live = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(300)
    cancer_live.iloc[::4, 2] = np.nan
    for summaries, frame, predictions in [
        (mixed, live, rng.choice(["yes", "no", "maybe"], 500)),
        (cancer, cancer_live, rng.choice([0, 1], 300)),
    ]:
        counted = BatchHistograms(summaries)
        for _ in range(2):  # the second time from the labels it remembered
            assert counted.features(frame) == {f["name"]: histogram(frame[f["name"]], f) for f in summaries["features"]}
            assert counted.predictions(predictions) == histogram(predictions, summaries["prediction"])


def test_a_batch_holds_the_requests_that_waited_and_each_gets_its_own_slice() -> None:
    passes: list[list[str]] = []

    def predict(requests: Sequence[serve.Request]) -> list[serve.Predicted | Exception]:
        passes.append([r.request_id for r in requests])
        time.sleep(0.05)
        return [
            ValueError("the model cannot take it") if r.request_id == "bad" else serve.Predicted([r.request_id], None)
            for r in requests
        ]

    async def callers() -> list[Any]:
        batcher = serve.Batcher(predict, max_batch_size=8, max_latency=5)
        names = [f"r{i}" for i in range(12)] + ["bad"]
        calls = [batcher(serve.Request(name, [])) for name in names]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    answers = asyncio.run(callers())
    assert [a.predictions for a in answers[:12]] == [[f"r{i}"] for i in range(12)]
    assert isinstance(answers[12], ValueError)
    assert len(passes) < 13 and max(len(p) for p in passes) <= 8, passes

    async def late() -> Any:
        shed = serve.Batcher(predict, max_batch_size=8, max_latency=0.01)
        first = asyncio.ensure_future(shed(serve.Request("first", [])))
        await asyncio.sleep(0)
        return await asyncio.gather(first, shed(serve.Request("late", [])), return_exceptions=True)

    first, shed = asyncio.run(late())
    assert first.predictions == ["first"] and isinstance(shed, serve.Overloaded)


def runtime_env(runtime: dict[str, Any] | None) -> dict[str, str]:
    spec: dict[str, Any] = {"model": MODEL, **({"runtime": runtime} if runtime is not None else {})}
    md = ModelDeployment.model_validate({"metadata": {"name": "d", "namespace": NAMESPACE, "uid": "u1"}, "spec": spec})
    manifest = children.server_deployment(md, model_version(1), "stable", 1, children.ServerSettings("img"))
    return {e["name"]: e["value"] for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}


def test_batching_and_workers_reach_the_servers_environment() -> None:
    told = runtime_env({"workers": 3, "maxBatchSize": 8, "maxLatencyMs": 250})
    assert (told[wire.WORKERS_ENV], told[wire.MAX_BATCH_SIZE_ENV], told[wire.MAX_LATENCY_MS_ENV]) == ("3", "8", "250")
    for runtime in (None, {"port": 8080}):  # unset, the server runs one worker per CPU of its pod
        default = runtime_env(runtime)
        assert wire.WORKERS_ENV not in default
        assert default[wire.MAX_BATCH_SIZE_ENV] == str(wire.DEFAULT_MAX_BATCH_SIZE)
        assert default[wire.MAX_LATENCY_MS_ENV] == str(wire.DEFAULT_MAX_LATENCY_MS)


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_pods_cpu_limit_is_read_from_its_cgroup(tmp_path: Path, files: dict[str, str], quota: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert serve.cgroup_cpu_quota(tmp_path) == quota
    assert 1 <= serve.pod_cpus() <= len(os.sched_getaffinity(0))
