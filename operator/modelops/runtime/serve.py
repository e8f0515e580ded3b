"""The server: a BentoML service that loads one exported model version and answers `POST /predict`.

BentoML provides `/livez`, `/readyz` (ready once `__init__` has loaded the model) and `/metrics`.
Configuration comes from the environment the ModelDeployment sets; `modelops serve` fetches and verifies the model
(`prepare`) before BentoML starts, since BentoML keeps running when a service cannot start.

Concurrent requests are predicted together (adaptive batching): each request is validated on its own, waits while
the model is busy, and gets its own slice of the next model pass. A classifier whose prediction is by
definition its most probable class runs once per batch (`predict_proba`), not twice. The histograms and quality
counts are made once per batch, in the pass's thread, not on each request's path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import anyio
import bentoml
import fsspec
import httpx
import numpy as np
import pandas as pd
import yaml
from bentoml.exceptions import BadInput, NotFound, ServiceUnavailable
from bentoml.validators import ContentType

from modelops.contract.serving import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_LATENCY_MS,
    FORWARDED_HEADER,
    MAX_BATCH_SIZE_ENV,
    MAX_LATENCY_MS_ENV,
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
    validate(records, features)
    return pd.DataFrame.from_records(records, columns=[f["name"] for f in features])


def validate(records: list[dict[str, Any]], features: list[dict[str, str]]) -> None:
    """BadInput (HTTP 400) saying what is wrong with which record, if anything is."""
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def pod_cpus() -> int:
    """The CPUs this container may use: its CPU limit (cgroup quota, whole CPUs, at least one) if it has one, else
    the CPUs it is scheduled on."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.floor(quota))) if quota is not None else cpus


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The container's CPU limit in CPUs (cgroup v2 or v1), None when it has none."""
    try:
        if (root / "cpu.max").exists():  # cgroup v2: "<quota> <period>" or "max <period>"
            quota, period = (root / "cpu.max").read_text().split()
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # cgroup v1: -1 when unlimited
        return None if quota_us <= 0 else quota_us / int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def workers() -> int:
    """`spec.runtime.workers`, else one worker process per CPU of the pod."""
    return int(os.environ.get(WORKERS_ENV) or pod_cpus())


def predicts_most_probable(estimator: Any) -> bool:
    """Whether the model's `predict` is by definition `classes_[argmax(predict_proba)]` (ties to the first class):
    the trainer's calibrated classifiers and random forests. Their predictions are read from the probabilities, one
    pass instead of two; any other model (a linear model decides on its scores, a user's on anything) is asked both."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.pipeline import Pipeline

    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    classes = getattr(estimator, "classes_", None)
    single_output = classes is not None and np.ndim(classes) == 1
    return single_output and isinstance(final, CalibratedClassifierCV | RandomForestClassifier | ExtraTreesClassifier)


@dataclass(frozen=True)
class Request:
    """A validated request waiting for its model pass."""

    request_id: str
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class Predicted:
    """One request's slice of a model pass."""

    predictions: list[Any]
    #: Rounded as answered; None without probabilities.
    probabilities: list[list[float]] | None


#: An answer in JSON, said so: else BentoML derives each response's media type from the answer's JSON schema, which it
#: builds again for every response (a tenth of the CPU of a server under load).
JsonAnswer = Annotated[dict[str, Any], ContentType("application/json")]


class Overloaded(ServiceUnavailable):
    """The request waited longer than `maxLatencyMs` for its model pass: shed (503) rather than answered late."""


class Batcher:
    """Concurrent requests predicted in one model pass: while a pass runs, the requests that arrive wait, and the
    next pass takes them all (at most `max_batch_size`), so batches grow with the load. Before a pass, the batcher
    waits a little (a quarter of the last pass, at most `GATHER`) for as many requests as the last pass had: the
    callers it just answered are sending their next ones, and a pass costs nearly the same for one record as for
    fifty. A request that waited `max_latency` seconds for its pass is shed. Whenever no request is left waiting,
    `idle` is called (before the last callers' answers leave).

    BentoML's own dispatcher (`batchable` APIs) was measured here holding single requests up to 60 ms, for tens of
    seconds after a busy spell, waiting for company that a CPU-bound model gains nothing from."""

    #: Longest wait for the next pass's requests to gather, in seconds.
    GATHER = 0.005

    def __init__(
        self,
        predict: Callable[[Sequence[Request]], list[Predicted | Exception]],
        max_batch_size: int,
        max_latency: float,
        idle: Callable[[], None] = lambda: None,
    ) -> None:
        self.predict, self.max_batch_size, self.max_latency, self.idle = predict, max_batch_size, max_latency, idle
        self._waiting: collections.deque[tuple[Request, asyncio.Future[Predicted], float]] = collections.deque()
        self._passes: asyncio.Task[None] | None = None
        self._expected, self._gather = 1, 0.0
        self._gathered: asyncio.Event | None = None

    async def __call__(self, request: Request) -> Predicted:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future, time.monotonic()))
        if self._gathered is not None and len(self._waiting) >= self._expected:
            self._gathered.set()
        if self._passes is None:
            self._passes = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        """Passes until no request waits (the next request starts them again)."""
        try:
            while self._waiting:
                if len(self._waiting) < self._expected:
                    self._gathered = asyncio.Event()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._gathered.wait(), self._gather)
                    self._gathered = None
                batch = self._next_batch()
                if not batch:
                    continue
                started = time.monotonic()
                try:
                    results = await anyio.to_thread.run_sync(self.predict, [request for request, _ in batch])
                except Exception as error:  # predict answers each request; this is a failure of its own
                    results = [error] * len(batch)
                self._expected = len(batch)
                self._gather = min((time.monotonic() - started) / 4, self.GATHER)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the caller went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                if not self._waiting:
                    self.idle()
        finally:
            self._passes = None

    def _next_batch(self) -> list[tuple[Request, asyncio.Future[Predicted]]]:
        batch: list[tuple[Request, asyncio.Future[Predicted]]] = []
        now = time.monotonic()
        while self._waiting and len(batch) < self.max_batch_size:
            request, future, since = self._waiting.popleft()
            if future.done():
                continue
            if now - since > self.max_latency:
                future.set_exception(Overloaded("the server is overloaded: try again later, or add replicas"))
                continue
            batch.append((request, future))
        return batch


@bentoml.service(name="modelops-server", traffic={"timeout": 60}, workers=workers())
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
        self.names = [f["name"] for f in self.features]
        self.probabilistic = hasattr(self.estimator, "predict_proba")
        self.most_probable = predicts_most_probable(self.estimator)
        self.batcher = Batcher(
            self.predict_batch,
            max_batch_size=int(os.environ.get(MAX_BATCH_SIZE_ENV) or DEFAULT_MAX_BATCH_SIZE),
            max_latency=int(os.environ.get(MAX_LATENCY_MS_ENV) or DEFAULT_MAX_LATENCY_MS) / 1000,
            idle=self.flush,
        )
        self.warm_up()

    def warm_up(self) -> None:
        """One model pass on a made-up record before the server says it is ready, counted nowhere: otherwise a
        fresh pod's first requests pay for the model's first pass, and a canary judged on them looks slow."""
        record = {f["name"]: 0.0 if f["type"] in NUMERIC_TYPES else None for f in self.features}
        frame = pd.DataFrame.from_records([record], columns=self.names)
        try:
            self.estimator.predict_proba(frame) if self.probabilistic else self.estimator.predict(frame)
            self.telemetry.histograms.features(frame)
        except Exception as error:  # a model that refuses the made-up record still serves real ones
            print(f"warming up skipped: {type(error).__name__}", file=sys.stderr)

    @bentoml.api(route="/predict")
    async def predict(self, records: list[dict[str, Any]], ctx: bentoml.Context) -> JsonAnswer:
        started = time.perf_counter()
        try:
            request_id = _request_id(ctx)
            validate(records, self.features)
        except BadInput:
            self.telemetry.error("bad_input", time.perf_counter() - started)
            raise
        try:
            predicted = await self.batcher(Request(request_id, records))
        except Overloaded:
            self.telemetry.error("overloaded", time.perf_counter() - started)
            raise
        except Exception:
            self.telemetry.error("model_error", time.perf_counter() - started)
            raise
        self.telemetry.request(time.perf_counter() - started, len(records))
        if self.mirror is not None:
            self.mirror.offer(records, predicted.predictions)
        answer: dict[str, Any] = {
            "model": self.model_name,
            "version": self.version,
            "requestId": request_id,
            "predictions": predicted.predictions,
        }
        if predicted.probabilities is not None:
            answer["probabilities"] = predicted.probabilities
        ctx.response.headers[REQUEST_ID_HEADER] = request_id
        return answer

    def predict_batch(self, requests: Sequence[Request]) -> list[Predicted | Exception]:
        """One model pass over the records of all `requests`, each getting its own slice back. A pass that fails is
        retried request by request, so that a request the model cannot take fails alone."""
        try:
            return self._answer(requests)
        except Exception as error:
            if len(requests) == 1:
                return [error]
        return [self.predict_batch([request])[0] for request in requests]

    def _answer(self, requests: Sequence[Request]) -> list[Predicted | Exception]:
        """Predict, count the batch (histograms, quality), keep each request's answers for labels, and slice."""
        records = requests[0].records if len(requests) == 1 else [r for q in requests for r in q.records]
        frame = pd.DataFrame.from_records(records, columns=self.names)
        positions = None
        if self.most_probable:
            probabilities = self.estimator.predict_proba(frame)
            positions = probabilities.argmax(axis=1)
            predictions = self.estimator.classes_[positions]
        else:
            predictions = self.estimator.predict(frame)
            probabilities = self.estimator.predict_proba(frame) if self.probabilistic else None
        listed = predictions.tolist()
        self.telemetry.observe(frame, predictions)
        if probabilities is not None:
            if positions is not None:
                self.quality.answered_positions(positions, probabilities)
            else:
                self.quality.answered(listed, probabilities)
        rounded = None if probabilities is None else probabilities.round(6).tolist()
        start = 0
        sliced: list[Predicted | Exception] = []
        kept: list[feedback.Answers] = []
        for request in requests:
            part = slice(start, start + len(request.records))
            start = part.stop
            if self.answers is not None:
                scores = self.quality.positive_scores(None if probabilities is None else probabilities[part])
                kept.append(feedback.Answers(request.request_id, listed[part], scores))
            sliced.append(Predicted(listed[part], None if rounded is None else rounded[part]))
        if self.answers is not None:
            self.answers.keep(kept, time.time())
        if time.monotonic() - self.telemetry.flushed > Telemetry.FLUSH_EVERY:
            self.flush()
        return sliced

    def flush(self) -> None:
        """The batches' counts (histograms, expected quality), added up in memory, to the series."""
        self.telemetry.flush()
        self.quality.flush()

    @bentoml.api(route="/feedback")
    def feedback(
        self,
        ctx: bentoml.Context,
        labels: list[dict[str, Any]] | None = None,
        requestId: str | None = None,  # the JSON body's own key
        label: Any = None,
        index: int = 0,
    ) -> JsonAnswer:
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
