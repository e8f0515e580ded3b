"""ModelBuild: one training run, from a dataset to a ModelVersion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from modelops.contract.serving import ColumnType
from modelops.contract.training import (
    DEFAULT_CALIBRATION,
    MIN_SLICE_ROWS,
    Calibration,
    MetricName,
    Task,
    Threshold,
)

from .common import (
    ApiModel,
    ClassRef,
    Duration,
    Fraction,
    FunctionRef,
    Image,
    ModelName,
    ObjectName,
    ResourceRequirements,
    SecretKeyRef,
    StatusBase,
    StorageUri,
    at_least,
    cel,
    rules,
)
from .resource import AGE, CRDInfo, CustomResource, NameRule, PrinterColumn


class ColumnSpec(ApiModel):
    """A declared column: the trainer refuses data that breaks any of these rules, naming the column."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "!has(self.minimum) || !has(self.maximum) || self.minimum <= self.maximum",
                "minimum must not be greater than maximum",
                field_path=".minimum",
            ),
            cel(
                "!(has(self.minimum) || has(self.maximum)) || self.type in ['number', 'integer']",
                "minimum and maximum apply only to number and integer columns",
                field_path=".type",
            ),
            cel(
                "!has(self.allowedValues) || self.type in ['category', 'string', 'integer']",
                "allowedValues applies only to category, string and integer columns",
                field_path=".type",
            ),
        )
    }

    name: str = Field(min_length=1, max_length=256, description="Column name in the dataset.")
    type: ColumnType = Field(description="Expected type: number, integer, boolean, category or string.")
    minimum: float | None = Field(default=None, description="Smallest allowed value (number and integer).")
    maximum: float | None = Field(default=None, description="Largest allowed value (number and integer).")
    allowed_values: list[str] | None = Field(
        default=None, max_length=1000, description="The only values allowed (category, string, integer)."
    )
    max_null_fraction: Fraction = Field(
        default=0.0, description="Largest share of missing values allowed, from 0 (none) to 1."
    )


class DatasetSpec(ApiModel):
    """Where the training data is and what it must look like."""

    uri: str = Field(
        max_length=2048,
        pattern=r"^(file|s3|gs|az|https?|sklearn)://.+",
        description=(
            "Dataset location, read through fsspec: `file:///data/x.csv`, `s3://bucket/x.parquet`, or a bundled "
            "scikit-learn dataset for demos such as `sklearn://breast_cancer`, `sklearn://iris`, "
            "`sklearn://diabetes`."
        ),
    )
    format: Literal["csv", "parquet"] | None = Field(
        default=None, description="File format; inferred from the URI's extension when omitted."
    )
    target: str = Field(min_length=1, max_length=256, description="The column the model predicts.")
    columns: list[ColumnSpec] | None = Field(
        default=None,
        max_length=1000,
        description="Declared columns with their rules. Undeclared columns are used as they are.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    credentials_secret: ObjectName | None = Field(
        default=None,
        description="A Secret whose keys become the trainer's environment, e.g. AWS_ACCESS_KEY_ID for `s3://`.",
    )


class PrivacySpec(ApiModel):
    """Protection of personal data, applied before anything else reads the data."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "!has(self.hash) || size(self.hash) == 0 || has(self.saltSecretRef)",
                "saltSecretRef is required when columns are hashed",
                field_path=".saltSecretRef",
                reason="FieldValueRequired",
            ),
            cel(
                "!has(self.drop) || !has(self.hash) || self.hash.all(c, !(c in self.drop))",
                "a column cannot be both dropped and hashed",
                field_path=".hash",
            ),
        )
    }

    drop: list[str] | None = Field(
        default=None, max_length=1000, description="Columns removed on read: they never reach the model."
    )
    hash: list[str] | None = Field(
        default=None,
        max_length=1000,
        description="Columns replaced by a salted SHA-256 (HMAC) of their value, so they stay joinable but unreadable.",
    )
    salt_secret_ref: SecretKeyRef | None = Field(default=None, description="The Secret key holding the hashing salt.")


class EstimatorSpec(ApiModel):
    """A scikit-learn compatible estimator given by import path."""

    class_name: ClassRef = Field(
        description="Import path of the estimator class, e.g. `sklearn.ensemble.RandomForestClassifier`."
    )
    params: dict[str, Any] | None = Field(default=None, description="Keyword arguments of the constructor.")


class TrainerSpec(ApiModel):
    """How to train: the image, the estimator, and the Job's limits."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "has(self.estimator) != has(self.function)",
                "exactly one of estimator and function must be set",
                field_path=".estimator",
            ),
            at_least("activeDeadline", "1s", "a Job needs time to run"),
        )
    }

    image: Image | None = Field(default=None, description="Trainer image. Defaults to the operator's runtime image.")
    estimator: EstimatorSpec | None = Field(default=None, description="An estimator class and its parameters.")
    function: FunctionRef | None = Field(
        default=None,
        description="Instead of an estimator, a `module:function` of yours that takes (X, y, params) and returns "
        "a fitted estimator.",
    )
    params: dict[str, Any] | None = Field(default=None, description="Parameters passed to `function`.")
    resources: ResourceRequirements | None = Field(default=None, description="Resources of the trainer container.")
    active_deadline: Duration = Field(
        default="1h", description="Longest time the training Job may run before it is stopped."
    )
    retries: int = Field(default=0, ge=0, le=10, description="How many times a failed training pod is retried.")
    service_account_name: ObjectName | None = Field(
        default=None,
        description="ServiceAccount of the trainer pod (e.g. for cloud storage). Naming one, or any Secret, needs the "
        "right to use it: see the approval policy.",
    )


class ThresholdSpec(ApiModel):
    """A bar a metric must clear for the version to be Validated."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "has(self.min) || has(self.max)", "set min, max or both", field_path=".min", reason="FieldValueRequired"
            ),
            cel(
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "min must not be greater than max",
                field_path=".min",
            ),
        )
    }

    metric: MetricName = Field(description="The metric this bar applies to.")
    min: float | None = Field(default=None, description="Smallest acceptable value.")
    max: float | None = Field(default=None, description="Largest acceptable value.")

    def wire(self) -> Threshold:
        """The bar as the trainer applies it and the model card states it."""
        return Threshold(metric=self.metric, min=self.min, max=self.max)


#: Slices a build may declare: each adds a line of metrics to the trainer's 4 KB answer and to the record.
MAX_SLICES = 5


class SliceSpec(ApiModel):
    """A part of the held-out rows the model card reports separately (e.g. one site, one age band)."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "has(self.values) != (has(self.min) || has(self.max))",
                "set values, or min and/or max, not both",
                field_path=".values",
                reason="FieldValueInvalid",
            ),
            cel("!has(self.min) || !has(self.max) || self.min < self.max", "min must be below max", field_path=".min"),
        )
    }

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)] = Field(
        description="The slice's name in the card and the record."
    )
    column: str = Field(min_length=1, max_length=256, description="The column that selects the rows (a feature).")
    values: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None, min_length=1, max_length=20, description="Rows whose column is one of these (as text)."
    )
    min: float | None = Field(default=None, description="Rows whose column is at least this.")
    max: float | None = Field(default=None, description="Rows whose column is below this.")


class EvaluationSpec(ApiModel):
    """How the model is evaluated on held-out data and what it must reach."""

    test_size: float = Field(
        default=0.2, gt=0, lt=1, description="Share of rows held out for evaluation, strictly between 0 and 1."
    )
    random_seed: int = Field(default=42, ge=0, description="Seed of the split and the estimator, for repeatability.")
    metrics: list[MetricName] | None = Field(
        default=None, description="Metrics to compute; all those that fit the task when omitted."
    )
    thresholds: list[ThresholdSpec] | None = Field(
        default=None,
        max_length=20,
        description="Bars the held-out metrics must clear.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["metric"]},
    )
    primary_metric: MetricName | None = Field(
        default=None,
        description="The metric compared with the champion (accuracy or r2 by default).",
    )
    allowed_regression: float = Field(
        default=0.0,
        ge=0,
        description="How much worse than the current champion on the primary metric a new version may be.",
    )
    slices: list[SliceSpec] | None = Field(
        default=None,
        max_length=MAX_SLICES,
        description="Parts of the held-out rows whose metrics the model card reports beside the whole; a slice with "
        f"fewer than {MIN_SLICE_ROWS} rows reports none (too few to say anything, and to protect who is in it).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    calibration: Calibration = Field(
        default=DEFAULT_CALIBRATION,
        description="Classifiers: how the probabilities are calibrated, on half of the held-out rows (the other half "
        "gives the metrics): `Sigmoid` (Platt), `Isotonic` (needs about a thousand held-out rows), or `None`. "
        "Calibrated probabilities let the monitor estimate accuracy before any label arrives.",
    )


class ApprovalPolicy(ApiModel):
    """How the version this build produces gets approved."""

    mode: Literal["Manual", "AutoWhenValidated"] = Field(
        default="Manual",
        description="`Manual`: someone sets spec.approval on the ModelVersion. "
        "`AutoWhenValidated`: approved as soon as it passes validation.",
    )


class ArtifactsSpec(ApiModel):
    """Where the trained model is exported."""

    uri: StorageUri = Field(
        description="Base URI of the exported artifacts; each build gets its own folder below it, "
        "`<uri>/<namespace>/<model>/<build>`.",
    )
    credentials_secret: ObjectName | None = Field(
        default=None,
        description="A Secret whose keys become the trainer's environment to write the artifacts, "
        "e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL for `s3://`.",
    )


class SigningSpec(ApiModel):
    """How the build signs what it exports (OpenSSF model signing, with a key: no network)."""

    key_secret_ref: SecretKeyRef = Field(
        description="The Secret key holding the signing key: an elliptic-curve private key (P-256, P-384 or P-521) "
        "in PEM, unencrypted. Only the trainer's pod reads it (a read-only file); the operator never does. Its "
        "public key must be among the chart's signing.trustedKeys for the versions to serve.",
    )


class ModelCardSpec(ApiModel):
    """What the model card says about the model beyond what the build measures."""

    intended_use: str | None = Field(
        default=None, max_length=2048, description="What the model is for, and who may rely on it."
    )
    limitations: list[Annotated[str, Field(max_length=1024)]] | None = Field(
        default=None, max_length=20, description="Where it is known to fall short."
    )


class ModelBuildSpec(ApiModel):
    """A training run: dataset, privacy, trainer, evaluation, artifacts."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "!has(self.privacy) || !has(self.privacy.drop) || !(self.dataset.target in self.privacy.drop)",
                "the target column cannot be dropped",
                field_path=".privacy.drop",
            ),
            cel(
                "!has(self.privacy) || !has(self.privacy.hash) || !(self.dataset.target in self.privacy.hash)",
                "the target column cannot be hashed",
                field_path=".privacy.hash",
            ),
        )
    }

    model: ModelName = Field(description="Logical model name; the versions this build produces belong to it.")
    task: Task = Field(description="`classification` or `regression`: decides the metrics.")
    dataset: DatasetSpec
    privacy: PrivacySpec | None = None
    trainer: TrainerSpec
    evaluation: EvaluationSpec | None = None
    approval: ApprovalPolicy | None = None
    artifacts: ArtifactsSpec
    signing: SigningSpec | None = None
    model_card: ModelCardSpec | None = None


BuildPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class ModelBuildStatus(StatusBase):
    """What happened to the build."""

    phase: BuildPhase | None = Field(default=None, description="Pending, Running, Succeeded or Failed.")
    job_name: str | None = Field(default=None, description="The training Job.")
    start_time: datetime | None = Field(default=None, description="When the training Job started.")
    completion_time: datetime | None = Field(default=None, description="When the build succeeded or failed.")
    dataset_digest: str | None = Field(default=None, description="SHA-256 of the data the model was trained on.")
    metrics: dict[str, float] | None = Field(default=None, description="Held-out metrics.")
    model_version: str | None = Field(default=None, description="The ModelVersion this build produced.")
    failure_reason: str | None = Field(
        default=None, description="Why the build failed: the trainer's message, OOMKilled, DeadlineExceeded, …"
    )


class ModelBuild(CustomResource):
    """A training run of a model: validates and protects the data, trains, evaluates, and records a ModelVersion."""

    crd: ClassVar[CRDInfo] = CRDInfo(
        kind="ModelBuild",
        name_rule=NameRule("it labels the training Job and the ModelVersion the build records"),
        plural="modelbuilds",
        short_names=("mb",),
        printer_columns=(
            PrinterColumn("Model", ".spec.model"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Version", ".status.modelVersion"),
            PrinterColumn("Reason", ".status.failureReason", priority=1),
            AGE,
        ),
    )

    spec: ModelBuildSpec = Field(
        json_schema_extra=rules(
            cel(
                "self == oldSelf",
                "spec is immutable: a ModelBuild records one training run; create a new ModelBuild instead",
                reason="FieldValueForbidden",
            ),
        )
    )
    status: ModelBuildStatus | None = None
