"""ModelDeployment: serve a version, scale it, and roll new versions out safely."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from modelops.contract.serving import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_LATENCY_MS, SERVER_PORT

from .common import (
    ApiModel,
    Duration,
    Fraction,
    Image,
    ModelName,
    NamespaceName,
    ObjectName,
    ResourceRequirements,
    StatusBase,
    Track,
    at_least,
    cel,
    rules,
)
from .resource import AGE, CRDInfo, CustomResource, NameRule, PrinterColumn, condition_column

#: How an approver answers a rollout (`modelops rollout promote|abort|retry`): annotations on the ModelDeployment,
#: so that a GitOps-managed spec is never touched. The rollout-commands admission policy lets only approvers set
#: them, and only in their own name; the operator removes them once it has acted.
COMMAND_ANNOTATION = "modelops.io/rollout-command"
COMMAND_BY_ANNOTATION = "modelops.io/rollout-command-by"
COMMAND_REASON_ANNOTATION = "modelops.io/rollout-command-reason"
COMMAND_AT_ANNOTATION = "modelops.io/rollout-command-at"
COMMAND_ANNOTATIONS = (COMMAND_ANNOTATION, COMMAND_BY_ANNOTATION, COMMAND_REASON_ANNOTATION, COMMAND_AT_ANNOTATION)
RolloutAction = Literal["promote", "abort", "retry"]
#: How a canary's weight reaches callers.
Routing = Literal["Replicas", "HTTPRoute"]


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
    workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Server worker processes per pod. Defaults to the pod's CPUs: its CPU limit if it has one, else "
        "the CPUs its node gives it.",
    )
    max_batch_size: int = Field(
        default=DEFAULT_MAX_BATCH_SIZE,
        ge=1,
        le=1000,
        description="Most requests predicted together in one model pass: concurrent requests are batched "
        "(adaptive batching), each caller getting its own answer; 1 predicts each request alone.",
    )
    max_latency_ms: int = Field(
        default=DEFAULT_MAX_LATENCY_MS,
        ge=10,
        le=60_000,
        description="Longest a request may wait for its model pass, in milliseconds: under overload, a request that "
        "waited longer is answered 503 rather than late.",
    )
    credentials_secret: ObjectName | None = Field(
        default=None,
        description="A Secret whose keys become the server's environment to read the version's artifact, "
        "e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL for `s3://`.",
    )


class CanaryStep(ApiModel):
    """One step of a canary: a share of replicas on the new version, held for a while; or, at weight 0, a shadow
    step: the new version answers a share of live requests mirrored by the stable servers, and its answers are
    compared with theirs, never returned."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "has(self.mirror) == (self.weight == 0)",
                "mirror is set on a shadow step (weight 0), and only there",
                field_path=".mirror",
            ),
        )
    }

    weight: int = Field(
        ge=0, le=99, description="Percent of replicas running the new version; 0 makes a shadow step (`mirror`)."
    )
    mirror: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="On a shadow step: the percent of live requests the stable servers mirror to the new version. "
        "Callers get only the stable answer; a mirror that cannot keep up is dropped, never waited for.",
    )
    pause: Duration = Field(default="1m", description="How long to hold and measure before the next step.")


class CanaryAnalysis(ApiModel):
    """The gates that promote, roll back or pause a canary, measured over each step's window. Absolute gates judge
    the canary alone; relative ones judge it against the stable version over the same window; the model gates judge
    what it answers. A gate left unset is not checked."""

    max_error_rate: Fraction = Field(default=0.05, description="Largest share of failed requests tolerated.")
    max_latency: Duration = Field(default="500ms", description="Largest tolerated latency at `latencyQuantile`.")
    latency_quantile: float = Field(default=0.95, gt=0, lt=1, description="The latency quantile checked.")
    min_requests: int = Field(
        default=20,
        ge=0,
        description="Fewest requests on each track in a step's window for a verdict; fewer by the step's end makes "
        "the step Inconclusive.",
    )
    max_error_rate_increase: Fraction | None = Field(
        default=None,
        description="Largest tolerated canary error rate minus the stable one's over the same window, as a "
        "fraction (0.02: two points more).",
    )
    max_latency_ratio: float | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Largest tolerated canary latency divided by the stable one's, both at `latencyQuantile` over "
        "the same window (1.5: at most half as slow again).",
    )
    max_prediction_divergence: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Largest tolerated Jensen-Shannon distance (base 2: 0 same, 1 disjoint) between the canary's "
        "and the stable version's prediction histograms over the same window: a canary that answers 200 OK with "
        "other predictions fails it.",
    )
    max_feature_drift: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Largest tolerated Jensen-Shannon distance between any feature of the canary's traffic and the "
        "canary's training baseline over the window.",
    )
    min_agreement: Fraction | None = Field(
        default=None,
        description="On a shadow step, for classifiers: the smallest tolerated share of mirrored records the new "
        "version classifies as the stable one does.",
    )
    max_mean_absolute_difference: float | None = Field(
        default=None,
        ge=0,
        description="On a shadow step, for regressors: the largest tolerated mean absolute difference between the "
        "new version's and the stable one's predictions on the same mirrored records.",
    )
    min_records: int = Field(
        default=100,
        ge=1,
        description="Fewest records on each track in a step's window for the distribution and shadow gates "
        "(maxPredictionDivergence, maxFeatureDrift, minAgreement, maxMeanAbsoluteDifference); fewer by the step's "
        "end makes the step Inconclusive.",
    )
    max_inconclusive: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Inconclusive steps measured again automatically before the rollout pauses for an approver "
        "(`modelops rollout promote|abort|retry`).",
    )
    inconclusive_timeout: Duration = Field(
        default="1h",
        description="How long a paused rollout waits for an approver; then the canary is rolled back.",
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
            cel(
                "!(has(self.analysis) && (has(self.analysis.minAgreement) || "
                "has(self.analysis.maxMeanAbsoluteDifference))) || self.steps[0].weight == 0",
                "minAgreement and maxMeanAbsoluteDifference judge a shadow step: the first step must have weight 0 "
                "and a mirror share",
                field_path=".analysis",
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


#: A hostname an HTTPRoute matches (Gateway API: a DNS name, optionally with one leading `*.` label).
RouteHostname = Annotated[
    str,
    Field(pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253),
]


class GatewaySpec(ApiModel):
    """The Gateway API Gateway callers reach the deployment through. The operator keeps an HTTPRoute named after
    the deployment attached to it; during a canary the route carries the step's exact weights."""

    name: ObjectName = Field(description="The Gateway's name.")
    namespace: NamespaceName | None = Field(
        default=None,
        description="The Gateway's namespace; omit for the deployment's own. Another namespace's Gateway must be "
        "one the operator's administrator allows (the chart's `gatewayApi.allowedParents`).",
    )
    section_name: ObjectName | None = Field(
        default=None, description="The Gateway listener to attach to; omit for every listener that admits the route."
    )
    hostnames: list[RouteHostname] | None = Field(
        default=None, max_length=16, description="Hostnames the route answers; omit for the listener's."
    )


class FeedbackSpec(ApiModel):
    """Delayed labels: every answer carries a request id (the caller's `X-Request-Id`, or a new one), and
    `POST /feedback` with `{"requestId", "label"}` joins a label to the answer it labels, later, on any pod. A
    server keeps only the request id, prediction and score of each answered record (never a feature value) for
    `retention`, at most `maxRecords` per pod, and exports the realized counts a ModelMonitor reads."""

    model_config = {"json_schema_extra": rules(at_least("retention", "1m", "labels join answers kept this long"))}

    enabled: bool = Field(default=True, description="Keep answers for labels, and take them at `/feedback`.")
    retention: Duration = Field(
        default="24h", description="How long an answer waits for its label; a later label is counted unknown."
    )
    max_records: int = Field(
        default=100_000,
        ge=100,
        le=10_000_000,
        description="Most answered records a pod keeps for labels; beyond it the oldest go first.",
    )


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
    feedback: FeedbackSpec | None = Field(
        default=None, description="Labels posted after the answers (on by default: omit for the defaults)."
    )
    gateway: GatewaySpec | None = Field(
        default=None,
        description="Route callers through this Gateway with an HTTPRoute whose weights follow the canary exactly, "
        "where the cluster serves the Gateway API; without it (or without the Gateway API), the canary's share is "
        "its share of the replicas behind the deployment's Service.",
    )


GateName = Literal[
    "ready",
    "errorRate",
    "latency",
    "errorRateIncrease",
    "latencyRatio",
    "predictionDivergence",
    "featureDrift",
    "agreement",
    "meanAbsoluteDifference",
]
GateVerdict = Literal["Pass", "Fail", "Inconclusive"]
DecisionAction = Literal["Start", "Wait", "Advance", "Promote", "RollBack", "Pause", "Retry"]


class GateResult(ApiModel):
    """One gate measured over a step's window."""

    gate: GateName = Field(description="The gate (its `spec.rollout.canary.analysis` field, without `max` or `min`).")
    value: float | None = Field(default=None, description="What was measured; empty when it could not be.")
    limit: float = Field(description="The declared limit.")
    samples: int = Field(description="Requests (or records, for distribution gates) it was measured on.")
    verdict: GateVerdict = Field(description="Pass, Fail, or Inconclusive (too few samples, or not measurable).")
    detail: str | None = Field(default=None, description="What the value is made of, or why it is missing.")


class Decision(ApiModel):
    """A decision of the rollout, and what it rested on."""

    action: DecisionAction = Field(description="What was decided.")
    reason: str = Field(description="The measurements behind it, or the approver's words.")
    time: datetime | None = Field(default=None, description="When.")
    step: int | None = Field(default=None, description="Index of the step it concluded.")
    verdict: GateVerdict | None = Field(default=None, description="The step's verdict, when measured.")
    by: str | None = Field(default=None, description="The approver who decided, for a person's decision.")
    asked: datetime | None = Field(default=None, description="When the approver asked, for a person's decision.")
    gates: list[GateResult] | None = Field(default=None, max_length=10, description="The gates it rested on.")


class ShadowComparison(ApiModel):
    """The canary's answers against the stable version's on the same mirrored records, in a shadow step."""

    compared: int = Field(description="Mirrored records both versions answered.")
    agreement: float | None = Field(
        default=None, description="Share of them the canary classified as the stable version did (classifiers)."
    )
    mean_absolute_difference: float | None = Field(
        default=None, description="Mean absolute difference of the two versions' predictions (regressors)."
    )
    dropped: int = Field(default=0, description="Mirrored requests dropped: the shadow could not keep up.")
    unreachable: int = Field(default=0, description="Mirrored requests the shadow did not answer in time.")
    rejected: int = Field(default=0, description="Mirrored requests the shadow answered with an error.")


class Measurement(ApiModel):
    """The canary against the stable version over the current step's window."""

    requests: int = Field(description="Requests the canary pods answered in the window.")
    error_rate: float | None = Field(default=None, description="The canary's share of failed requests.")
    latency: float | None = Field(default=None, description="The canary's latency at the analysis quantile, seconds.")
    stable_requests: int | None = Field(default=None, description="Requests the stable pods answered in the window.")
    window_start: datetime | None = Field(default=None, description="When the window began.")
    source: Literal["pods", "prometheus"] | None = Field(default=None, description="Where the counts came from.")
    shadow: ShadowComparison | None = Field(default=None, description="In a shadow step: the comparison.")
    gates: list[GateResult] | None = Field(default=None, max_length=10, description="Each gate, as measured.")


class RolloutStatus(ApiModel):
    """Where a rollout is."""

    phase: Literal["Stable", "Progressing", "Paused", "RolledBack"] | None = Field(
        default=None,
        description="Stable, Progressing (a canary runs), Paused (a step was inconclusive: an approver decides) or "
        "RolledBack (the last canary failed).",
    )
    canary_version: str | None = Field(default=None, description="The ModelVersion under test.")
    step: int | None = Field(default=None, ge=0, description="Index of the current step.")
    canary_weight: int | None = Field(default=None, description="Percent of requests on the canary.")
    stable_weight: int | None = Field(default=None, description="Percent of requests on the stable version.")
    mirror: int | None = Field(
        default=None, description="In a shadow step: percent of live requests mirrored to the canary version."
    )
    routing: Routing | None = Field(
        default=None,
        description="How the weights reach callers: `Replicas` (shares of the pods behind the deployment's Service) "
        "or `HTTPRoute` (exact weights on the HTTPRoute named after the deployment).",
    )
    step_started: datetime | None = Field(default=None, description="When the current step (its window) began.")
    inconclusive: int | None = Field(
        default=None, description="Inconclusive verdicts of the current step, measured again automatically."
    )
    paused_since: datetime | None = Field(default=None, description="When the rollout paused for an approver.")
    measurement: Measurement | None = Field(default=None, description="The canary's last measurement.")
    last_decision: Decision | None = Field(default=None, description="The last decision and why.")
    decisions: list[Decision] | None = Field(
        default=None, max_length=20, description="The decision record of the last rollouts, newest last."
    )

    def serving_canary(self) -> str | None:
        """The canary version while its pods serve (the rollout progresses, or waits for an approver)."""
        return self.canary_version if self.phase in ("Progressing", "Paused") else None


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
            PrinterColumn("Decision", ".status.rollout.lastDecision.reason", priority=1),
            AGE,
        ),
        scale=(".spec.replicas", ".status.replicas", ".status.selector"),
    )

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None
