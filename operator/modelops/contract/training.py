"""What the operator hands the trainer, and what the trainer hands back; the metrics a build can be judged by.

Light on purpose (pydantic only): the operator imports it to build a Job, the trainer to read it.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .serving import ColumnType

#: Where the trainer reads its configuration: a file the Job's pod gets from its own annotation (downward API),
#: so a large configuration never meets the limits of an environment variable.
CONFIG_FILE_ENV = "MODELOPS_TRAIN_CONFIG_FILE"
CONFIG_ANNOTATION = "modelops.io/train-config"
#: The largest configuration the Job carries (a pod's annotations hold 256 KiB in all).
MAX_CONFIG_BYTES = 200_000
SALT_ENV = "MODELOPS_PRIVACY_SALT"
#: The build's signing key (PEM), a file from the Secret the build names; without it the trainer signs nothing.
SIGNING_KEY_ENV = "MODELOPS_SIGNING_KEY_FILE"
SIGNING_KEY_DIR = "/etc/modelops/signing"
SIGNING_KEY_FILE = "key.pem"
#: The files of a build's folder: the model, its baseline, the card and provenance the signature covers, and the
#: signature itself (the one file it cannot cover).
MODEL_FILE = "model.bentomodel"
BASELINE_FILE = "baseline.json"
SIGNATURE_FILE = "model.sig"
#: A bundle signs a handful of files in about 2 KB: 16 KB is far more than one needs, and bounds what a trainer can
#: make the operator record.
MAX_BUNDLE_BYTES = 16_384
TERMINATION_MESSAGE_LIMIT = 4096
#: Where a container leaves its last word for its pod's status (a trainer run outside a pod is told elsewhere).
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LOG_ENV = "MODELOPS_TERMINATION_LOG"
#: Exit code of a failure a retry cannot fix (bad data, bad parameters); any other non-zero code may be retried.
USER_ERROR_EXIT_CODE = 2

#: Held-out metrics by task, and those where lower is better (every other one is higher-is-better).
ClassificationMetric = Literal["accuracy", "precision", "recall", "f1", "rocAuc", "logLoss"]
RegressionMetric = Literal["r2", "mae", "rmse", "mape"]
MetricName = Literal[ClassificationMetric, RegressionMetric]
CLASSIFICATION_METRICS: tuple[str, ...] = get_args(ClassificationMetric)
REGRESSION_METRICS: tuple[str, ...] = get_args(RegressionMetric)
LOWER_IS_BETTER = frozenset({"logLoss", "mae", "rmse", "mape"})
Task = Literal["classification", "regression"]
#: How a classifier's probabilities are calibrated on held-out rows: Platt's sigmoid, isotonic regression, or not.
Calibration = Literal["Sigmoid", "Isotonic", "None"]
DEFAULT_CALIBRATION: Calibration = "Sigmoid"


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Column(_Wire):
    name: str
    type: ColumnType
    minimum: float | None = None
    maximum: float | None = None
    allowed_values: list[str] | None = None
    max_null_fraction: float = 0.0


#: The fewest held-out rows a slice's metrics are computed on.
MIN_SLICE_ROWS = 20


class Slice(_Wire):
    name: str
    column: str
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None


class Threshold(_Wire):
    metric: str
    min: float | None = None
    max: float | None = None


class TrainConfig(_Wire):
    """Everything the trainer needs, derived from a ModelBuild's spec."""

    build: str
    namespace: str
    model: str
    task: Task
    dataset_uri: str
    dataset_format: Literal["csv", "parquet"] | None = None
    target: str
    columns: list[Column] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)
    hash: list[str] = Field(default_factory=list)
    estimator: str | None = None
    function: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    test_size: float = 0.2
    random_seed: int = 42
    metrics: list[str] | None = None
    calibration: Calibration = DEFAULT_CALIBRATION
    thresholds: list[Threshold] = Field(default_factory=list)
    slices: list[Slice] = Field(default_factory=list)
    #: What the model card says the model is for and where it falls short, as the build declares.
    intended_use: str | None = None
    limitations: list[str] = Field(default_factory=list)
    #: For the provenance: the build's uid, the image the Job runs, and the operator that made the Job.
    build_uid: str = ""
    trainer_image: str = ""
    builder: str = ""
    #: The build's own folder (the operator chooses it): everything the trainer exports goes below it.
    artifacts_folder: str


class Feature(_Wire):
    name: str
    type: ColumnType


class PersonalColumn(_Wire):
    """A column whose values look personal, named with what they look like (never with a value)."""

    name: str
    looks_like: Literal["e-mail addresses", "phone numbers", "identifiers", "personal data (by its name)"]


class TrainResult(_Wire):
    """The trainer's answer, written as JSON to the termination message (at most 4 KB)."""

    ok: bool
    error: str | None = None
    artifact_uri: str | None = None
    artifact_digest: str | None = None
    baseline_uri: str | None = None
    baseline_digest: str | None = None
    dataset_digest: str | None = None
    metrics: dict[str, float] | None = None
    #: Held-out metrics per declared slice (a slice with too few rows has none).
    slice_metrics: dict[str, dict[str, float]] | None = None
    rows: int | None = None
    features: list[Feature] | None = None
    #: Columns that look personal and that no privacy rule covers.
    unprotected: list[PersonalColumn] | None = None
    #: The model-signing bundle over the build's folder, gzipped and in base64 (`pack`) to fit the message.
    signature: str | None = None

    def to_message(self) -> str:
        """JSON that fits the termination message: the feature list goes first, then the error is shortened."""
        result = self
        text = result.model_dump_json(by_alias=True, exclude_none=True)
        if len(text.encode()) > TERMINATION_MESSAGE_LIMIT and result.features:
            result = result.model_copy(update={"features": None})
            text = result.model_dump_json(by_alias=True, exclude_none=True)
        if len(text.encode()) > TERMINATION_MESSAGE_LIMIT and result.error:
            room = len(result.error) - (len(text.encode()) - TERMINATION_MESSAGE_LIMIT) - 16
            result = result.model_copy(update={"error": result.error[: max(room, 0)] + " …"})
            text = result.model_dump_json(by_alias=True, exclude_none=True)
        return text

    @classmethod
    def from_message(cls, message: str) -> TrainResult:
        return cls.model_validate(json.loads(message))


def pack(text: str) -> str:
    """Text as gzip in base64: a signature bundle (about 2 KB of JSON) takes about 1.5 KB of the 4 KB message."""
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def unpack(packed: str) -> str:
    """`pack`'s text back; ValueError when it is not what `pack` makes, or larger than a bundle may be (read no
    further than that: a trainer's message is not trusted)."""
    try:
        text = zlib.decompressobj(wbits=31).decompress(base64.b64decode(packed, validate=True), MAX_BUNDLE_BYTES + 1)
        if len(text) > MAX_BUNDLE_BYTES:
            raise ValueError(f"it holds more than {MAX_BUNDLE_BYTES} bytes")
        return text.decode()
    except (zlib.error, ValueError) as error:
        raise ValueError(f"not a packed bundle: {error}") from None


def leave_termination_message(text: str) -> bool:
    """Write the container's termination message (what `kubectl describe pod` and the operator read); False when
    it cannot be written (outside a pod)."""
    try:
        Path(os.environ.get(TERMINATION_LOG_ENV, TERMINATION_LOG)).write_text(text[:TERMINATION_MESSAGE_LIMIT])
        return True
    except OSError:
        return False
