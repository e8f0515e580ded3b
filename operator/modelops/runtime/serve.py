"""The server: a BentoML service that loads one exported model version and answers `POST /predict`.

BentoML provides `/livez`, `/readyz` (ready once `__init__` has loaded the model) and `/metrics`.
Configuration comes from the environment the ModelDeployment sets; `modelops serve` fetches and verifies the model
(`prepare`) before BentoML starts, since BentoML keeps running when a service cannot start.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import bentoml
import fsspec
import pandas as pd
import yaml
from bentoml.exceptions import BadInput

from modelops.contract.serving import (
    MODEL_DIGEST_ENV,
    MODEL_NAME_ENV,
    MODEL_TAG_ENV,
    MODEL_URI_ENV,
    MODEL_VERSION_ENV,
    NUMERIC_TYPES,
    WORKERS_ENV,
)
from modelops.contract.training import leave_termination_message

from . import mirror
from .telemetry import Telemetry

MAX_RECORDS = 10_000


def fetch(uri: str, digest: str) -> bentoml.Model:
    """Download the exported model, check its digest, and import it (a second import finds the first)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model.bentomodel"
        h = hashlib.sha256()
        with fsspec.open(uri, "rb") as source, local.open("wb") as target:
            while chunk := source.read(1 << 20):
                h.update(chunk)
                target.write(chunk)
        if f"sha256:{h.hexdigest()}" != digest:
            raise RuntimeError(
                f"the model file at {uri} is not the approved one (its digest is sha256:{h.hexdigest()}, "
                f"the version's is {digest}): refusing to serve it"
            )
        with tarfile.open(local) as archive:
            member = next(m for m in archive.getmembers() if m.name.lstrip("./") == "model.yaml")
            info = yaml.safe_load(archive.extractfile(member).read())  # type: ignore[union-attr]
        tag = f"{info['name']}:{info['version']}"
        try:
            return bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            return bentoml.models.import_model(str(local))


def prepare() -> str | None:
    """Fetch and verify the version's model into the local store before the server starts, and return its tag; or,
    when the file cannot be served (not the approved one, missing), leave the reason as the container's termination
    message and return None, so the container stops with it instead of serving nothing."""
    try:
        return str(fetch(os.environ[MODEL_URI_ENV], os.environ[MODEL_DIGEST_ENV]).tag)
    except Exception as error:
        reason = f"cannot load the model: {error}"
        leave_termination_message(reason)
        print(reason, file=sys.stderr)
        return None


def to_frame(records: list[dict[str, Any]], features: list[dict[str, str]]) -> pd.DataFrame:
    """Records as the model's input, or BadInput (HTTP 400) saying what is wrong with which record."""
    if not records:
        raise BadInput("records: send at least one record")
    if len(records) > MAX_RECORDS:
        raise BadInput(f"records: at most {MAX_RECORDS} records per request, got {len(records)}")
    names = [f["name"] for f in features]
    expected = set(names)
    problems = []
    for i, record in enumerate(records):
        missing = [n for n in names if n not in record]
        unknown = sorted(set(record) - expected)
        if missing:
            problems.append(f"record {i}: missing feature(s) {', '.join(map(repr, missing[:5]))}")
        if unknown:
            problems.append(f"record {i}: unknown feature(s) {', '.join(map(repr, unknown[:5]))}")
        for feature in features:
            value = record.get(feature["name"])
            if feature["type"] in NUMERIC_TYPES and value is not None and not _is_number(value):
                problems.append(f"record {i}: feature {feature['name']!r} must be a number")
        if len(problems) >= 10:
            break
    if problems:
        raise BadInput("; ".join(problems[:10]))
    return pd.DataFrame.from_records(records, columns=names)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@bentoml.service(name="modelops-server", traffic={"timeout": 60}, workers=int(os.environ.get(WORKERS_ENV, "1")))
class ModelServer:
    def __init__(self) -> None:
        model = bentoml.models.get(os.environ[MODEL_TAG_ENV])  # verified by `prepare` in this container
        self.estimator = bentoml.sklearn.load_model(model)
        self.features = cast(list[dict[str, str]], model.info.metadata["features"])  # as the trainer wrote it
        self.model_name = os.environ.get(MODEL_NAME_ENV, model.tag.name)
        self.version = os.environ.get(MODEL_VERSION_ENV, str(model.tag.version))
        self.telemetry = Telemetry(model.custom_objects["baseline"], self.model_name, self.version)
        categorical = self.telemetry.prediction_summary["kind"] != "numeric"
        self.mirror = mirror.from_environment(self.model_name, self.version, categorical)  # in a shadow step

    @bentoml.api(route="/predict")
    def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            frame = to_frame(records, self.features)
        except BadInput:
            self.telemetry.error("bad_input", time.perf_counter() - started)
            raise
        try:
            predictions = self.estimator.predict(frame)
            probabilities = (
                self.estimator.predict_proba(frame).round(6).tolist()
                if hasattr(self.estimator, "predict_proba")
                else None
            )
        except Exception:
            self.telemetry.error("model_error", time.perf_counter() - started)
            raise
        self.telemetry.request(time.perf_counter() - started, len(records))
        self.telemetry.observe(frame, predictions)
        answer: dict[str, Any] = {
            "model": self.model_name,
            "version": self.version,
            "predictions": predictions.tolist(),
        }
        if self.mirror is not None:
            self.mirror.offer(records, answer["predictions"])
        if probabilities is not None:
            answer["probabilities"] = probabilities
        return answer
