"""ModelDeployment: serve a version, scale it, and roll new versions out safely."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from modelops.contract.serving import SERVER_PORT

from .common import (
    ApiModel,
    Duration,
    Fraction,
    Image,
    ModelName,
    ObjectName,
    ResourceRequirements,
    StatusBase,
    Track,
    cel,
    rules,
)
from .resource import AGE, CRDInfo, CustomResource, NameRule, PrinterColumn, condition_column


class AutoscalingSpec(ApiModel):
    """Bounds of a HorizontalPodAutoscaler on CPU utilisation."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must not be greater than maxReplicas",
                field_path=".minReplicas",
            ),
        )
    }

    min_replicas: int = Field(default=1, ge=1, le=1000, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas.")
    target_cpu_utilization: int = Field(
        default=70, ge=1, le=100, description="Average CPU utilisation (percent of requests) to keep."
    )


class RuntimeSpec(ApiModel):
    """The serving container."""

    image: Image | None = Field(default=None, description="Serving image. Defaults to the operator's runtime image.")
    resources: ResourceRequirements | None = None
    port: int = Field(default=SERVER_PORT, ge=1024, le=65535, description="Port the server listens on.")
    workers: int = Field(default=1, ge=1, le=64, description="Server worker processes per pod.")
    credentials_secret: ObjectName | None = Field(
        default=None,
        description="A Secret whose keys become the server's environment to read the version's artifact, "
        "e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL for `s3://`.",
    )


class CanaryStep(ApiModel):
    """One step of a canary: a share of replicas on the new version, held for a while."""

    weight: int = Field(ge=1, le=99, description="Percent of replicas running the new version.")
    pause: Duration = Field(default="1m", description="How long to hold and measure before the next step.")


class CanaryAnalysis(ApiModel):
    """The measurements that promote or roll back a canary."""

    max_error_rate: Fraction = Field(default=0.05, description="Largest share of failed requests tolerated.")
    max_latency: Duration = Field(default="500ms", description="Largest tolerated latency at `latencyQuantile`.")
    latency_quantile: float = Field(default=0.95, gt=0, lt=1, description="The latency quantile checked.")
    min_requests: int = Field(
        default=20, ge=0, description="Fewest requests in a step for a verdict; fewer means wait."
    )


class CanarySpec(ApiModel):
    """Steps and gates of a canary rollout."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "self.steps.map(s, s.weight).isSorted() && self.steps.all(a, self.steps.exists_one(b, b.weight == a.weight))",
                "steps' weights must strictly increase",
                field_path=".steps",
            ),
        )
    }

    steps: list[CanaryStep] = Field(
        min_length=1, max_length=10, description="Increasing weights; after the last one the canary is promoted."
    )
    analysis: CanaryAnalysis = Field(default_factory=CanaryAnalysis)


class RolloutSpec(ApiModel):
    """How a new version replaces the one serving."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "self.strategy != 'Canary' || has(self.canary)",
                "canary is required when strategy is Canary",
                field_path=".canary",
                reason="FieldValueRequired",
            ),
        )
    }

    strategy: Literal["Rolling", "Canary"] = Field(
        default="Rolling", description="`Rolling`: a plain rolling update. `Canary`: measured steps."
    )
    canary: CanarySpec | None = None


class PrometheusSource(ApiModel):
    """Read serving metrics from Prometheus instead of the pods."""

    url: str = Field(
        pattern=r"^https?://[^?#]+$",
        max_length=2048,
        description="Base URL of the Prometheus server; it must be one the operator's administrator allows "
        "(the chart's `prometheus.allowedUrls`).",
    )


class MetricsSource(ApiModel):
    """Where canary measurements come from."""

    prometheus: PrometheusSource | None = Field(default=None, description="Omit to read the pods' /metrics directly.")


class ModelDeploymentSpec(ApiModel):
    """Which version to serve and how."""

    model: ModelName = Field(description="The model to serve.")
    version: int | None = Field(
        default=None,
        ge=1,
        description="The version number to serve; it must be Approved. Omit to follow the latest Approved version.",
    )
    replicas: int | None = Field(
        default=None, ge=0, le=1000, description="Replicas (1 when omitted). Ignored while autoscaling is set."
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None, description="Let a HorizontalPodAutoscaler set the replicas between these bounds."
    )
    runtime: RuntimeSpec | None = None
    rollout: RolloutSpec | None = None
    metrics: MetricsSource | None = None


class Decision(ApiModel):
    """The last decision of the canary controller."""

    action: Literal["Start", "Wait", "Advance", "Promote", "RollBack"] = Field(description="What was decided.")
    reason: str = Field(description="The measurements behind it.")
    time: datetime | None = Field(default=None, description="When.")


class Measurement(ApiModel):
    """The canary's measured health, over its life so far."""

    requests: int = Field(description="Requests the canary pods answered.")
    error_rate: float | None = Field(default=None, description="Share of failed requests.")
    latency: float | None = Field(default=None, description="Latency at the analysis quantile, in seconds.")


class RolloutStatus(ApiModel):
    """Where a rollout is."""

    phase: Literal["Stable", "Progressing", "RolledBack"] | None = Field(
        default=None, description="Stable, Progressing (a canary runs) or RolledBack (the last canary failed)."
    )
    canary_version: str | None = Field(default=None, description="The ModelVersion under test.")
    step: int | None = Field(default=None, ge=0, description="Index of the current step.")
    canary_weight: int | None = Field(default=None, description="Percent of replicas on the canary.")
    stable_weight: int | None = Field(default=None, description="Percent of replicas on the stable version.")
    step_started: datetime | None = Field(default=None, description="When the current step began.")
    measurement: Measurement | None = Field(default=None, description="The canary's last measurement.")
    last_decision: Decision | None = Field(default=None, description="The last decision and why.")


class HistoryEntry(ApiModel):
    """One version served, and when."""

    version: str = Field(description="The ModelVersion.")
    track: Track = Field(default="stable", description="Whether it served as stable or canary.")
    started: datetime = Field(description="When it started serving.")
    ended: datetime | None = Field(default=None, description="When it stopped; empty while it serves.")
    end_reason: Literal["Replaced", "Promoted", "RolledBack"] | None = Field(
        default=None, description="Why it stopped serving."
    )


class ModelDeploymentStatus(StatusBase):
    """What is serving."""

    serving_version: str | None = Field(default=None, description="The ModelVersion serving stable traffic.")
    serving_version_number: int | None = Field(default=None, description="Its version number.")
    replicas: int | None = Field(default=None, description="Pods of this deployment (for the scale subresource).")
    ready_replicas: int | None = Field(default=None, description="Pods ready to serve.")
    selector: str | None = Field(default=None, description="Label selector of the pods (for the scale subresource).")
    endpoint: str | None = Field(default=None, description="In-cluster URL of the prediction service.")
    rollout: RolloutStatus | None = None
    history: list[HistoryEntry] | None = Field(
        default=None, max_length=100, description="Versions served, newest last."
    )


class ModelDeployment(CustomResource):
    """Serves an approved model version with BentoML, scales it, and rolls new versions out."""

    crd: ClassVar[CRDInfo] = CRDInfo(
        kind="ModelDeployment",
        name_rule=NameRule("it names the Service in front of the model", label=True),
        plural="modeldeployments",
        short_names=("md",),
        printer_columns=(
            PrinterColumn("Model", ".spec.model"),
            PrinterColumn("Version", ".status.servingVersionNumber", type="integer"),
            condition_column("Ready", "Ready"),
            PrinterColumn("Replicas", ".status.readyReplicas", type="integer"),
            PrinterColumn("Rollout", ".status.rollout.phase"),
            PrinterColumn("Canary", ".status.rollout.canaryVersion", priority=1),
            PrinterColumn("Weight", ".status.rollout.canaryWeight", type="integer", priority=1),
            PrinterColumn("Endpoint", ".status.endpoint", priority=1),
            AGE,
        ),
        scale=(".spec.replicas", ".status.replicas", ".status.selector"),
    )

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None
