"""The server: a BentoML service that loads one exported model version and answers `POST /predict`.

BentoML provides `/livez`, `/readyz` (ready once `__init__` has loaded the model) and `/metrics`.
Configuration comes from the environment the ModelDeployment sets; `modelops serve` fetches and verifies the model
(`prepare`) before BentoML starts, since BentoML keeps running when a service cannot start.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import bentoml
import fsspec
import httpx
import pandas as pd
import yaml
from bentoml.exceptions import BadInput, NotFound

from modelops.contract.serving import (
    FORWARDED_HEADER,
    MODEL_DIGEST_ENV,
    MODEL_NAME_ENV,
    MODEL_TAG_ENV,
    MODEL_URI_ENV,
    MODEL_VERSION_ENV,
    NUMERIC_TYPES,
    PEERS_ENV,
    POD_IP_ENV,
    REQUEST_ID_HEADER,
    SIGNATURE_BUNDLE_ENV,
    TRUSTED_KEYS_ENV,
    WORKERS_ENV,
)
from modelops.contract.training import MODEL_FILE, leave_termination_message
from modelops.evidence import signature

from . import feedback, mirror
from .quality import Quality
from .telemetry import Telemetry

MAX_RECORDS = 10_000


def fetch(uri: str, digest: str, bundle: str | None = None, trusted: dict[str, bytes] | None = None) -> bentoml.Model:
    """Download the exported model, check its digest, and import it (a second import finds the first). With a
    signature bundle, every file it signs is downloaded from beside the model and checked against it first."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "signed"
        folder.mkdir()
        names = list(signature.verify(bundle, trusted or {}).files) if bundle else [MODEL_FILE]
        base = uri.rsplit("/", 1)[0]
        for name in names:
            _download(f"{base}/{name}" if bundle else uri, folder / name)
        local = folder / MODEL_FILE
        actual = signature.sha256_file(local)
        if actual != digest:
            raise RuntimeError(
                f"the model file at {uri} is not the approved one (its digest is {actual}, "
                f"the version's is {digest}): refusing to serve it"
            )
        if bundle:
            signed = signature.verify_folder(folder, bundle, trusted or {})
            print(
                f"the model's {len(signed.files)} signed files match the signature of trusted key {signed.key}",
                flush=True,
            )
        with tarfile.open(local) as archive:
            member = next(m for m in archive.getmembers() if m.name.lstrip("./") == "model.yaml")
            info = yaml.safe_load(archive.extractfile(member).read())  # type: ignore[union-attr]
        tag = f"{info['name']}:{info['version']}"
        try:
            return bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            return bentoml.models.import_model(str(local))


def _download(uri: str, local: Path) -> None:
    with fsspec.open(uri, "rb") as source, local.open("wb") as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)


def prepare() -> str | None:
    """Fetch and verify the version's model into the local store before the server starts, and return its tag; or,
    when the file cannot be served (not the approved one, not as signed, missing), leave the reason as the
    container's termination message and return None, so the container stops with it instead of serving nothing."""
    try:
        bundle = os.environ.get(SIGNATURE_BUNDLE_ENV) or None
        trusted = {name: pem.encode() for name, pem in json.loads(os.environ.get(TRUSTED_KEYS_ENV) or "{}").items()}
        return str(fetch(os.environ[MODEL_URI_ENV], os.environ[MODEL_DIGEST_ENV], bundle, trusted).tag)
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
        classifier = model.info.metadata.get("task", "classification") == "classification"
        classes = getattr(self.estimator, "classes_", None) if classifier else None
        self.quality = Quality(self.model_name, self.version, None if classes is None else list(classes))
        self.answers = feedback.from_environment()  # None: labels are not taken
        self.peers = os.environ.get(PEERS_ENV, "")
        self.client = httpx.Client()

    @bentoml.api(route="/predict")
    def predict(self, records: list[dict[str, Any]], ctx: bentoml.Context) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            request_id = _request_id(ctx)
            frame = to_frame(records, self.features)
        except BadInput:
            self.telemetry.error("bad_input", time.perf_counter() - started)
            raise
        try:
            predictions = self.estimator.predict(frame)
            probabilities = self.estimator.predict_proba(frame) if hasattr(self.estimator, "predict_proba") else None
        except Exception:
            self.telemetry.error("model_error", time.perf_counter() - started)
            raise
        self.telemetry.request(time.perf_counter() - started, len(records))
        self.telemetry.observe(frame, predictions)
        answer: dict[str, Any] = {
            "model": self.model_name,
            "version": self.version,
            "requestId": request_id,
            "predictions": predictions.tolist(),
        }
        self.quality.answered(answer["predictions"], probabilities)
        if self.answers is not None:
            scores = self.quality.positive_scores(probabilities)
            self.answers.keep(request_id, answer["predictions"], scores, time.time())
        if self.mirror is not None:
            self.mirror.offer(records, answer["predictions"])
        if probabilities is not None:
            answer["probabilities"] = probabilities.round(6).tolist()
        ctx.response.headers[REQUEST_ID_HEADER] = request_id
        return answer

    @bentoml.api(route="/feedback")
    def feedback(
        self,
        ctx: bentoml.Context,
        labels: list[dict[str, Any]] | None = None,
        requestId: str | None = None,  # the JSON body's own key
        label: Any = None,
        index: int = 0,
    ) -> dict[str, Any]:
        """Labels for earlier answers: `{"requestId", "label"[, "index"]}` or `{"labels": [...]}`. Each joins the
        answer it labels, in this pod or, handed over, in another; the answer says which were unknown (never
        answered, expired, or labelled already) and which were refused."""
        if self.answers is None:
            raise NotFound("feedback is off for this deployment (spec.feedback.enabled)")
        posted = labels if labels is not None else [{"requestId": requestId, "label": label, "index": index}]
        try:
            parsed = feedback.parse_labels(posted)
        except ValueError as error:
            raise BadInput(str(error)) from error
        moment, forwarded = time.time(), bool(ctx.request.headers.get(FORWARDED_HEADER))
        unknown, rejected = [], []
        for item in parsed:
            problem = self.quality.label_problem(item.label)
            if problem is not None:
                rejected.append({"requestId": item.request_id, "index": item.index, "reason": problem})
                continue
            kept = self.answers.take(item.request_id, item.index, moment)
            if kept is None:
                unknown.append(item)
            else:
                self.quality.joined(kept, item.label)
        if unknown and self.peers and not forwarded:
            host, _, port = self.peers.rpartition(":")
            unknown = feedback.hand_over(
                unknown, feedback.peers(host, int(port), os.environ.get(POD_IP_ENV)), self.client
            )
        joined = len(parsed) - len(unknown) - len(rejected)
        if not forwarded:  # counted once, where the labels were posted
            self.quality.outcome("joined", joined)
            self.quality.outcome("unknown", len(unknown))
            self.quality.outcome("rejected", len(rejected))
        return {
            "joined": joined,
            "unknown": [{"requestId": u.request_id, "index": u.index} for u in unknown],
            "rejected": rejected,
        }


def _request_id(ctx: bentoml.Context) -> str:
    """The caller's id for its request (`X-Request-Id`), or a new one."""
    given = ctx.request.headers.get(REQUEST_ID_HEADER)
    if given is None:
        return uuid.uuid4().hex
    if not feedback.valid_request_id(given):
        raise BadInput(
            f"{REQUEST_ID_HEADER}: 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
        )
    return given
