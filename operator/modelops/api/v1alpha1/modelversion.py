"""ModelVersion: the immutable record of one trained model, and its approval."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from modelops.contract.serving import ColumnType
from modelops.contract.training import MAX_BUNDLE_BYTES, MetricName, Task

from .common import ApiModel, Digest, ModelName, StatusBase, StorageUri, Track, cel, immutable, rules
from .modelbuild import ModelCardSpec, ThresholdSpec
from .resource import AGE, CRDInfo, CustomResource, PrinterColumn


class ArtifactRef(ApiModel):
    """The exported model."""

    uri: StorageUri = Field(description="Where the exported BentoML model is.")
    digest: Digest = Field(description="`sha256:` digest of the exported model; the server refuses any other file.")


class SignatureRef(ApiModel):
    """The model signature the build made: the bundle itself, so that the operator verifies it without reading the
    store, and where the same bundle lies beside the artifact for anyone else's verifier."""

    uri: StorageUri = Field(description="Where the bundle (`model.sig`) lies, beside the model file.")
    bundle: str = Field(
        max_length=MAX_BUNDLE_BYTES,
        description="The OpenSSF model-signing bundle (sigstore bundle JSON): a DSSE envelope over an in-toto "
        "statement listing each signed file's sha256, signed with the build's key.",
    )


class ProvenanceRef(ApiModel):
    """The build's provenance (an in-toto statement, SLSA provenance v1), covered by the signature."""

    uri: StorageUri = Field(description="Where `provenance.json` lies, beside the model file.")
    digest: Digest = Field(description="Its `sha256:` digest, as the signature lists it.")


class FeatureSpec(ApiModel):
    """An input the model expects."""

    name: str = Field(min_length=1, max_length=256, description="Feature (column) name.")
    type: ColumnType = Field(description="Feature type.")


class Lineage(ApiModel):
    """Where the version came from: enough to rebuild it or to explain it."""

    build: str | None = Field(default=None, description="The ModelBuild that produced it.")
    build_uid: str | None = Field(default=None, description="That ModelBuild's uid (the provenance's invocation).")
    dataset_uri: str | None = Field(default=None, description="The dataset it was trained on.")
    dataset_digest: str | None = Field(default=None, description="SHA-256 of that data after privacy rules.")
    trainer_image: str | None = Field(default=None, description="The trainer image.")
    estimator: str | None = Field(default=None, description="Estimator class or `module:function`.")
    parameters: dict[str, Any] | None = Field(default=None, description="The estimator's parameters.")


class ValidationPolicy(ApiModel):
    """What the version is checked against before it can be approved."""

    thresholds: list[ThresholdSpec] | None = Field(
        default=None,
        max_length=20,
        description="Bars the metrics must clear, copied from the build.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["metric"]},
    )
    primary_metric: MetricName | None = Field(default=None, description="Metric compared with the champion.")
    allowed_regression: float = Field(default=0.0, ge=0, description="Allowed loss against the champion.")
    auto_approve: bool = Field(
        default=False,
        description="Approve as soon as validation passes. Only those who may approve may set it (the approval "
        "policy); a build sets it when an approver asked for `approval.mode: AutoWhenValidated`.",
    )


class Approval(ApiModel):
    """A person's decision on the version: the one mutable part of the record."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "self.state == 'Pending' || has(self.by)",
                "by is required when the state is Approved or Rejected",
                field_path=".by",
                reason="FieldValueRequired",
            ),
        )
    }

    state: Literal["Pending", "Approved", "Rejected"] = Field(
        default="Pending", description="Pending, Approved or Rejected."
    )
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who decided: the approval policy requires the requester's own user name (or one the requester "
        "may impersonate).",
    )
    reason: str | None = Field(default=None, max_length=4096, description="Why.")


def _record(description: str, **kwargs: Any) -> Any:
    """A field of the immutable record: any change is refused by the API server, naming the field."""
    return Field(description=description, json_schema_extra=immutable("this field of a ModelVersion"), **kwargs)


class ModelVersionSpec(ApiModel):
    """The record (immutable once created) and the approval (mutable)."""

    model_config = {
        "json_schema_extra": rules(
            *(
                cel(
                    f"has(self.{f}) == has(oldSelf.{f})",
                    f"{f} is immutable: it cannot be added or removed",
                    field_path=f".{f}",
                    reason="FieldValueForbidden",
                )
                for f in (
                    "baselineUri",
                    "baselineDigest",
                    "lineage",
                    "validation",
                    "features",
                    "signature",
                    "provenance",
                    "modelCard",
                    "sliceMetrics",
                )
            ),
        )
    }

    model: ModelName = _record("Logical model name.")
    version: int = _record("Version number, unique within the model.", ge=1)
    task: Task = _record("classification or regression.")
    framework: Literal["sklearn"] = _record("The framework that loads the artifact.", default="sklearn")
    artifact: ArtifactRef = _record("The exported model.")
    metrics: dict[str, float] = _record("Held-out metrics.")
    slice_metrics: dict[str, dict[str, float]] | None = _record(
        "Held-out metrics per slice the build declared (none for a slice with too few rows).", default=None
    )
    features: list[FeatureSpec] | None = _record("The model's inputs, in order.", default=None)
    baseline_uri: StorageUri | None = _record(
        "Baseline statistics of the training data, for people and batch jobs (the servers carry the same baseline "
        "inside the model file, covered by its digest).",
        default=None,
    )
    baseline_digest: Digest | None = _record("`sha256:` digest of the baseline file.", default=None)
    lineage: Lineage | None = _record("Where the version came from.", default=None)
    validation: ValidationPolicy | None = _record("What the version is checked against.", default=None)
    signature: SignatureRef | None = _record("The model signature made at build, when the build signs.", default=None)
    provenance: ProvenanceRef | None = _record("How the model was made, when the build signs.", default=None)
    model_card: ModelCardSpec | None = _record(
        "What the build declared for the model card (the card's other facts are the record's own).", default=None
    )
    approval: Approval | None = Field(
        default=None, description="The approval decision; the only field that may change."
    )


Stage = Literal["Candidate", "Validated", "Approved", "Rejected", "Archived"]


class CheckResult(ApiModel):
    """One check of the version."""

    name: str = Field(description="e.g. `threshold:accuracy` or `champion:accuracy`.")
    passed: bool = Field(description="Whether the check passed.")
    message: str = Field(description="The values compared, for a person.")


#: How many of the deployments serving a version its status names: enough to say who, and to refuse its deletion,
#: without rewriting a list of every deployment each time one of a thousand starts or stops.
MAX_SERVED_BY = 20


class ServingRef(ApiModel):
    """A ModelDeployment serving the version."""

    deployment: str = Field(description="The ModelDeployment, in the same namespace.")
    track: Track = Field(description="Whether it serves as stable or as canary.")


class ModelVersionStatus(StatusBase):
    """Where the version is in its life."""

    stage: Stage | None = Field(default=None, description="Candidate, Validated, Approved, Rejected or Archived.")
    checks: list[CheckResult] | None = Field(default=None, description="Validation results.")
    champion: str | None = Field(default=None, description="The version it was compared with.")
    approved_by: str | None = Field(default=None, description="Who approved the version.")
    approved_at: datetime | None = Field(default=None, description="When the operator saw the approval.")
    stage_time: datetime | None = Field(default=None, description="When the stage last changed.")
    served_by: list[ServingRef] | None = Field(
        default=None,
        max_length=MAX_SERVED_BY,
        description=f"The ModelDeployments serving it now (the first {MAX_SERVED_BY} by name); while any does, the "
        "approval policy refuses to delete it.",
    )


class ModelVersion(CustomResource):
    """An immutable, approvable record of a trained model: artifact, metrics, lineage."""

    crd: ClassVar[CRDInfo] = CRDInfo(
        kind="ModelVersion",
        plural="modelversions",
        short_names=("mv",),
        printer_columns=(
            PrinterColumn("Model", ".spec.model"),
            PrinterColumn("Version", ".spec.version", type="integer"),
            PrinterColumn("Stage", ".status.stage"),
            PrinterColumn("Approved-By", ".spec.approval.by"),
            PrinterColumn("Build", ".spec.lineage.build", priority=1),
            PrinterColumn("Dataset", ".spec.lineage.datasetUri", priority=1),
            PrinterColumn("Digest", ".spec.artifact.digest", priority=1),
            AGE,
        ),
    )

    spec: ModelVersionSpec
    status: ModelVersionStatus | None = None
