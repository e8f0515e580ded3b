"""Delayed labels and quality counts on a real server process: every answer carries a request id, a label posted
later joins its answer once, the realized and expected counts in /metrics are what the test computes itself from the
answers, and no feature value is kept or exported. The answer log's bounds, without a server."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer, load_diabetes

from modelops.contract import serving as wire
from modelops.runtime.feedback import AnswerLog, Answers, Label, parse_labels
from modelops.runtime.quality import expected_matrix, score_bins
from tests.support.server import serving
from tests.support.training import bundled, run_trainer, train_bundled

FOREST = "sklearn.ensemble.RandomForestClassifier"
SEEDED = 123.456789  # a feature value no server may keep or export


def feedback_env(home: Path) -> dict[str, str]:
    return {
        wire.FEEDBACK_RETENTION_ENV: "3600",
        wire.FEEDBACK_CAPACITY_ENV: "1000",
        "MODELOPS_FEEDBACK_STORE": str(home / "answers.sqlite3"),
    }


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    result = train_bundled(tmp_path_factory.mktemp("model"), "breast_cancer", FOREST, {"n_estimators": 20})
    home = tmp_path_factory.mktemp("server")
    with serving(result, home, **feedback_env(home)) as url:
        yield url, home


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("regression")
    code, result, _ = run_trainer(folder, bundled("diabetes", "sklearn.linear_model.Ridge", {}, task="regression"))
    assert code == 0, result.error
    home = tmp_path_factory.mktemp("regression-server")
    with serving(result.model_dump(by_alias=True), home, **feedback_env(home)) as url:
        yield url


def records(rows: int, start: int = 0) -> tuple[list[dict], list[int]]:
    frame = load_breast_cancer(as_frame=True).frame.iloc[start : start + rows]
    return frame.drop(columns=["target"]).to_dict(orient="records"), frame["target"].tolist()


def samples(url: str, family: str) -> list[tuple[dict[str, str], float]]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [
        (s.labels, s.value)
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == f"{family}_total"
    ]


def test_every_answer_carries_a_request_id_the_callers_own_when_given(classifier: tuple[str, Path]) -> None:
    url, _ = classifier
    rows, _ = records(1)
    made = httpx.post(f"{url}/predict", json={"records": rows}, timeout=30)
    assert made.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", made.json()["requestId"])
    assert made.headers[wire.REQUEST_ID_HEADER] == made.json()["requestId"]
    given = httpx.post(f"{url}/predict", json={"records": rows}, headers={"X-Request-Id": "order-42"}, timeout=30)
    assert given.json()["requestId"] == "order-42" == given.headers[wire.REQUEST_ID_HEADER]
    refused = httpx.post(f"{url}/predict", json={"records": rows}, headers={"X-Request-Id": "no spaces"}, timeout=30)
    assert refused.status_code == 400 and "X-Request-Id" in refused.text


def test_labels_join_their_answers_once_and_the_realized_confusion_matrix_is_the_tests_own(
    classifier: tuple[str, Path],
) -> None:
    url, _ = classifier
    rows, truth = records(40, start=100)
    answer = httpx.post(f"{url}/predict", json={"records": rows}, headers={"X-Request-Id": "batch-1"}, timeout=30)
    predictions = answer.json()["predictions"]
    labels = [{"requestId": "batch-1", "index": i, "label": t} for i, t in enumerate(truth)]
    posted = httpx.post(f"{url}/feedback", json={"labels": labels}, timeout=30)
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"joined": 40, "unknown": [], "rejected": []}

    ours = Counter((str(p), str(t)) for p, t in zip(predictions, truth, strict=True))
    realized = {(s["predicted"], s["actual"]): v for s, v in samples(url, wire.LABELLED) if s["version"] == "7"}
    assert realized == ours
    scored = sum(v for _, v in samples(url, wire.LABELLED_SCORES))
    assert scored == 40, "each labelled record counted once on the score bins too"

    again = httpx.post(f"{url}/feedback", json={"requestId": "batch-1", "label": 1}, timeout=30).json()
    assert again["joined"] == 0 and again["unknown"] == [{"requestId": "batch-1", "index": 0}], "joined once"
    never = httpx.post(f"{url}/feedback", json={"requestId": "never-asked", "label": 1}, timeout=30).json()
    assert never["unknown"] == [{"requestId": "never-asked", "index": 0}]
    made_up = httpx.post(f"{url}/feedback", json={"requestId": "batch-1", "index": 1, "label": "maybe"}, timeout=30)
    assert made_up.json()["rejected"] == [
        {"requestId": "batch-1", "index": 1, "reason": "a label must be one of the model's 2 classes"}
    ]
    assert "maybe" not in httpx.get(f"{url}/metrics", timeout=10).text, "a posted label reaches no series"
    outcomes = {s["outcome"]: v for s, v in samples(url, wire.FEEDBACK)}
    assert outcomes["joined"] == 40 and outcomes["unknown"] >= 2 and outcomes["rejected"] >= 1


def test_bad_labels_are_refused_naming_the_field(classifier: tuple[str, Path]) -> None:
    url, _ = classifier
    answer = httpx.post(f"{url}/feedback", json={"labels": [{"requestId": "x", "label": 1, "index": -1}]}, timeout=30)
    assert answer.status_code == 400 and "labels[0].index" in answer.text
    answer = httpx.post(f"{url}/feedback", json={"labels": [{"label": 1}]}, timeout=30)
    assert answer.status_code == 400 and "labels[0].requestId" in answer.text


def test_the_expected_counts_are_the_answers_probabilities_summed_per_predicted_class(
    classifier: tuple[str, Path],
) -> None:
    url, _ = classifier
    before = {(s["predicted"], s["actual"]): v for s, v in samples(url, wire.EXPECTED)}
    scored_before = sum(v for _, v in samples(url, wire.SCORES))
    rows, _ = records(60, start=200)
    body = httpx.post(f"{url}/predict", json={"records": rows}, timeout=30).json()
    probabilities = np.asarray(body["probabilities"])
    ours = expected_matrix(np.asarray(body["predictions"]), probabilities)  # classes 0 and 1 are their positions
    after = {(s["predicted"], s["actual"]): v for s, v in samples(url, wire.EXPECTED)}
    for p in (0, 1):
        for a in (0, 1):
            added = after.get((str(p), str(a)), 0.0) - before.get((str(p), str(a)), 0.0)
            assert added == pytest.approx(ours[p, a], abs=1e-4)
    assert sum(v for _, v in samples(url, wire.SCORES)) - scored_before == 60


def test_the_server_keeps_and_exports_no_feature_value(classifier: tuple[str, Path]) -> None:
    url, home = classifier
    rows, _ = records(1)
    rows[0]["mean radius"] = SEEDED
    answer = httpx.post(f"{url}/predict", json={"records": rows}, headers={"X-Request-Id": "seeded"}, timeout=30)
    assert answer.status_code == 200
    seeded = str(SEEDED).encode()
    for path in home.glob("answers.sqlite3*"):  # the store and its write-ahead log
        assert seeded not in path.read_bytes(), path
    assert str(SEEDED) not in httpx.get(f"{url}/metrics", timeout=10).text
    assert seeded not in (home / "log").read_bytes()


def test_a_regressors_labels_give_its_error_sums(regressor: str) -> None:
    frame = load_diabetes(as_frame=True).frame.head(25)
    rows, truth = frame.drop(columns=["target"]).to_dict(orient="records"), frame["target"].tolist()
    body = httpx.post(f"{regressor}/predict", json={"records": rows}, timeout=30).json()
    labels = [{"requestId": body["requestId"], "index": i, "label": t} for i, t in enumerate(truth)]
    assert httpx.post(f"{regressor}/feedback", json={"labels": labels}, timeout=30).json()["joined"] == 25
    errors = np.asarray(truth) - np.asarray(body["predictions"])
    assert samples(regressor, wire.LABELLED_VALUES)[0][1] == 25
    assert samples(regressor, wire.ABSOLUTE_ERROR)[0][1] == pytest.approx(np.abs(errors).sum(), rel=1e-6)
    assert samples(regressor, wire.SQUARED_ERROR)[0][1] == pytest.approx((errors**2).sum(), rel=1e-6)
    text = httpx.post(f"{regressor}/feedback", json={"requestId": "r", "label": "high"}, timeout=30).json()
    assert text["rejected"][0]["reason"] == "a regressor's label must be a number"


def test_answers_expire_and_the_oldest_go_beyond_capacity(tmp_path: Path) -> None:
    log = AnswerLog(tmp_path / "a.sqlite3", retention=60, capacity=100)
    log.keep([Answers("old", [1], [0.9])], now=1000)
    assert log.take("old", 0, now=1061) is None, "expired"
    for i in range(0, 150, 2):  # as batches of two requests, each batch in one write
        log.keep([Answers(f"r{i}", [0, 1], None), Answers(f"r{i + 1}", [0, 1], None)], now=2000 + i)
    log.prune(now=2150)
    assert len(log) == 100
    assert log.take("r0", 0, now=2150) is None, "the oldest went first"
    kept = log.take("r149", 1, now=2150)
    assert kept is not None and kept.prediction == 1 and kept.score is None
    assert log.take("r149", 1, now=2150) is None, "taken once"


def test_score_bins_hold_their_upper_bound_and_labels_are_parsed_by_position() -> None:
    assert score_bins(np.asarray([0.0, 0.01, 0.0100001, 0.5, 1.0])).tolist() == [1, 1, 2, 50, 100]
    assert wire.score_bin(1) == "0.01" and wire.score_bin(100) == "1.0"
    assert parse_labels([{"requestId": "a", "label": 0}]) == [Label("a", 0, 0)]
    with pytest.raises(ValueError, match=r"labels\[0\]\.label"):
        parse_labels([{"requestId": "a"}])
