"""ModelMonitor: watch a deployment for drift, errors and latency; alert; retrain."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal, get_args

from pydantic import Field

from .common import (
    ALERTS_SECRET,
    ApiModel,
    DataKey,
    DeploymentName,
    Duration,
    Fraction,
    StatusBase,
    Track,
    at_least,
    cel,
    rules,
)
from .modelbuild import ModelBuildSpec
from .resource import AGE, CRDInfo, CustomResource, NameRule, PrinterColumn, condition_column

NumericMethod = Literal["psi", "jensenShannon", "wasserstein", "ks"]
CategoricalMethod = Literal["chiSquared", "psi", "jensenShannon"]
DriftMethod = Literal["psi", "jensenShannon", "wasserstein", "ks", "chiSquared"]


class MonitorSource(ApiModel):
    """Where the serving metrics are read."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "self.type != 'Prometheus' || has(self.prometheusUrl)",
                "prometheusUrl is required when type is Prometheus",
                field_path=".prometheusUrl",
                reason="FieldValueRequired",
            ),
        )
    }

    type: Literal["Pods", "Prometheus"] = Field(
        default="Pods", description="`Pods`: scrape the serving pods' /metrics. `Prometheus`: query `increase()`."
    )
    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^?#]+$",
        max_length=2048,
        description="Base URL of the Prometheus server; it must be one the operator's administrator allows "
        "(the chart's `prometheus.allowedUrls`).",
    )


class FeatureDriftOverride(ApiModel):
    """A method or threshold for one feature."""

    feature: str = Field(min_length=1, max_length=256, description="The feature.")
    method: DriftMethod | None = Field(default=None, description="Its drift method.")
    threshold: float | None = Field(default=None, gt=0, description="Its drift threshold.")


class DriftSpec(ApiModel):
    """How drift is measured, on histograms the pods already aggregate."""

    enabled: bool = Field(default=True, description="Measure drift at all.")
    numeric_method: NumericMethod = Field(default="psi", description="Method for numeric features.")
    categorical_method: CategoricalMethod = Field(default="chiSquared", description="Method for categorical ones.")
    threshold: float | None = Field(
        default=None,
        gt=0,
        description="Score above which a feature has drifted; per-method defaults (PSI 0.2, Jensen-Shannon 0.1, "
        "KS 0.1, Wasserstein 0.1 of the baseline's spread). For chiSquared this is the p-value below which it has.",
    )
    features: list[FeatureDriftOverride] | None = Field(
        default=None,
        max_length=1000,
        description="Per-feature methods and thresholds.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["feature"]},
    )
    min_samples: int = Field(
        default=200, ge=1, description="Fewest requests in a window for a verdict; fewer is `NotEnoughData`."
    )
    dataset_drift_share: Fraction = Field(
        default=0.5, description="Share of drifted features above which the whole dataset has drifted."
    )


class ErrorRateSpec(ApiModel):
    """When failed requests raise `ErrorRateHigh`."""

    max: Fraction = Field(default=0.05, description="Largest tolerated share of failed requests in a window.")
    min_requests: int = Field(default=20, ge=1, description="Fewest requests for a verdict.")


class LatencySpec(ApiModel):
    """When slow answers raise `LatencyHigh`."""

    quantile: float = Field(default=0.95, gt=0, lt=1, description="The latency quantile checked.")
    max: Duration = Field(default="500ms", description="Largest tolerated latency at the quantile.")


class WebhookSink(ApiModel):
    """An Alertmanager-compatible webhook; its URL is a secret."""

    url_secret_key: DataKey = Field(
        description=f"The key of this namespace's Secret `{ALERTS_SECRET}` that holds the webhook URL: the operator "
        "reads that one Secret and no other. The URL must start with one the operator's administrator allows "
        "(the chart's `alerts.webhookUrlPrefixes`).",
    )


class AlertsSpec(ApiModel):
    """Where alerts go, beyond status conditions and operator metrics (always on)."""

    events: bool = Field(default=True, description="Warning Events on the monitor and the deployment.")
    prometheus_rule: bool = Field(
        default=False, description="Generate a PrometheusRule (when the Prometheus Operator's CRD exists)."
    )
    webhook: WebhookSink | None = None


#: The metric a monitor holds a version to: the first five are estimated before labels (classifiers) and realized
#: from them; the errors of a regressor are realized only.
PerformanceMetric = Literal["accuracy", "precision", "recall", "f1", "rocAuc", "mae", "rmse"]
#: The alerts a monitor raises, and those that can start a retraining.
AlertName = Literal["DriftDetected", "ErrorRateHigh", "LatencyHigh", "PerformanceDegraded"]
RetrainTrigger = Literal["DriftDetected", "PerformanceDegraded"]
RETRAIN_TRIGGERS: tuple[RetrainTrigger, ...] = get_args(RetrainTrigger)


class PerformanceSpec(ApiModel):
    """What the model is worth, held against its version's holdout metric: estimated from the calibrated
    probabilities the servers count (classifiers, before any label), and realized from the labels posted to the
    servers' `/feedback` (see the ModelDeployment's `spec.feedback`)."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "!has(self.labelWindow) || duration(self.labelWindow) >= duration('1s')",
                "labelWindow must be at least 1s",
                field_path=".labelWindow",
            ),
        )
    }

    metric: PerformanceMetric = Field(
        default="accuracy",
        description="accuracy, precision, recall, f1 or rocAuc (classifiers: estimated and realized; precision, "
        "recall and f1 of the positive class for two classes, else macro averages), or mae or rmse (regressors: "
        "realized only). The version must record it among its held-out metrics.",
    )
    max_drop: float = Field(
        default=0.05,
        gt=0,
        description="Largest tolerated degradation from the version's held-out value, in the metric's own units: "
        "a drop for accuracy, precision, recall, f1 and rocAuc, a rise for mae and rmse.",
    )
    min_records: int = Field(
        default=100, ge=1, description="Fewest answered records in a window for an estimate; fewer is not judged."
    )
    min_labels: int = Field(default=50, ge=1, description="Fewest labelled records in `labelWindow` for a verdict.")
    label_window: Duration | None = Field(
        default=None,
        description="The window realized metrics count the labels of (labels come later and fewer than answers): "
        "the monitor's `window` when omitted.",
    )


class RetrainSpec(ApiModel):
    """Retraining when drift is detected or the model's performance degrades."""

    model_config = {"json_schema_extra": rules(at_least("cooldown", "1m", "each retraining is a training Job"))}

    enabled: bool = Field(default=False, description="Create a ModelBuild when an alert of `on` is raised.")
    on: list[RetrainTrigger] = Field(
        default_factory=lambda: list(RETRAIN_TRIGGERS),
        min_length=1,
        max_length=2,
        description="The alerts that start a retraining.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    cooldown: Duration = Field(default="24h", description="Least time between two retrains.")
    dataset_uri: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^(file|s3|gs|az|https?|sklearn)://.+",
        description="Fresh data to train on; the template's dataset URI when omitted.",
    )
    template: ModelBuildSpec = Field(description="The spec of the ModelBuild to create.")


class ModelMonitorSpec(ApiModel):
    """What to watch and what to do about it."""

    model_config = {
        "json_schema_extra": rules(
            cel(
                "duration(self.window) >= duration(self.interval)",
                "window must not be shorter than interval",
                field_path=".window",
            ),
            at_least("interval", "1s", "each check reads the serving pods and writes the status"),
        )
    }

    deployment: DeploymentName = Field(description="The ModelDeployment to watch, in the same namespace.")
    interval: Duration = Field(default="1m", description="How often to check.")
    window: Duration = Field(default="5m", description="The window each check looks back over.")
    source: MonitorSource | None = None
    drift: DriftSpec | None = None
    error_rate: ErrorRateSpec | None = None
    latency: LatencySpec | None = None
    performance: PerformanceSpec | None = Field(
        default=None, description="Hold the served versions to their held-out performance; omit not to."
    )
    alerts: AlertsSpec | None = None
    retrain: RetrainSpec | None = None


class FeatureDrift(ApiModel):
    """The verdict on one feature in the last window."""

    feature: str = Field(description="The feature.")
    method: DriftMethod = Field(description="The method used.")
    score: float | None = Field(default=None, description="The drift score (or test statistic).")
    p_value: float | None = Field(default=None, description="The p-value, for statistical tests.")
    samples: int = Field(default=0, description="Observations of the feature in the window.")
    verdict: Literal["Drift", "NoDrift", "NotEnoughData"] = Field(description="The decision.")


class QualityMetrics(ApiModel):
    """A version's metrics over the window, estimated or realized; empty where undefined or not measurable."""

    records: int = Field(description="Answered records (estimate) or labelled records (realized) they rest on.")
    accuracy: float | None = Field(default=None, description="Share of records classified right.")
    precision: float | None = Field(default=None, description="Precision (positive class, or macro average).")
    recall: float | None = Field(default=None, description="Recall (positive class, or macro average).")
    f1: float | None = Field(default=None, description="F1 (positive class, or macro average).")
    roc_auc: float | None = Field(default=None, description="ROC AUC on the positive class's score bins (two classes).")
    mae: float | None = Field(default=None, description="Mean absolute error (regressors, realized).")
    rmse: float | None = Field(default=None, description="Root mean squared error (regressors, realized).")


class VersionPerformance(ApiModel):
    """What one served version is worth over the last window, beside what it was worth on its holdout rows."""

    version: str = Field(description="The ModelVersion.")
    track: Track = Field(description="Whether it serves as stable or canary.")
    metric: PerformanceMetric = Field(description="The metric held (`spec.performance.metric`).")
    holdout: float | None = Field(default=None, description="Its held-out value, as the version records it.")
    estimated: float | None = Field(default=None, description="Its value estimated without labels.")
    realized: float | None = Field(default=None, description="Its value from the labels posted.")
    verdict: Literal["Degraded", "Healthy", "NotEnoughData"] = Field(
        description="Degraded when the estimate or the realized value is worse than the holdout by more than "
        "`maxDrop`, on enough records or labels."
    )
    message: str = Field(description="What was judged, or why nothing could be.")
    estimate: QualityMetrics | None = Field(default=None, description="Every metric, estimated.")
    labelled: QualityMetrics | None = Field(default=None, description="Every metric, realized.")


class ActiveAlert(ApiModel):
    """An alert currently raised."""

    name: AlertName = Field(description="The alert.")
    since: datetime = Field(description="When it was raised.")
    message: str = Field(description="What was measured.")


class AlertNotice(ApiModel):
    """An alert's change the webhook has not yet taken."""

    alert: AlertName = Field(description="The alert.")
    firing: bool = Field(description="Raised (firing), or cleared (resolved).")
    since: datetime = Field(description="When it was raised (the payload's startsAt).")
    at: datetime = Field(description="When it changed (a resolved alert's endsAt).")
    message: str = Field(description="What was measured.")


#: Changes kept for a webhook that does not take them; beyond, the oldest is dropped (and that is said).
MAX_UNDELIVERED = 20


class WebhookDelivery(ApiModel):
    """The webhook's outbox, kept in the status so that whichever operator replica leads goes on delivering it, in
    order, after a restart or a receiver's outage."""

    undelivered: list[AlertNotice] | None = Field(
        default=None, max_length=MAX_UNDELIVERED, description="Changes still to deliver, oldest first."
    )
    attempts: int | None = Field(default=None, description="Failed attempts at delivering the oldest.")
    next_attempt_time: datetime | None = Field(default=None, description="When it is tried again.")
    last_failure: str | None = Field(default=None, description="Why the last attempt failed (never the URL).")


class RetrainRecord(ApiModel):
    """The last retraining started."""

    build: str = Field(description="The ModelBuild created.")
    time: datetime = Field(description="When.")
    reason: str = Field(description="The alert that caused it.")


class ModelMonitorStatus(StatusBase):
    """The last check and what it found."""

    last_check_time: datetime | None = Field(default=None, description="When the last check ran.")
    samples: int | None = Field(default=None, description="Requests in the last window.")
    features: list[FeatureDrift] | None = Field(default=None, description="Drift of each feature.")
    drifted_share: float | None = Field(default=None, description="Share of features that drifted.")
    error_rate: float | None = Field(default=None, description="Share of failed requests in the last window.")
    latency: float | None = Field(default=None, description="Latency at the quantile, in seconds.")
    performance: list[VersionPerformance] | None = Field(
        default=None, max_length=2, description="What each served version is worth: stable first, then a canary."
    )
    active_alerts: list[ActiveAlert] | None = Field(default=None, description="Alerts currently raised.")
    last_retrain: RetrainRecord | None = Field(default=None, description="The last retraining started.")
    webhook: WebhookDelivery | None = Field(default=None, description="Alert changes the webhook has yet to take.")


class ModelMonitor(CustomResource):
    """Watches a ModelDeployment for data drift, errors, latency and what the model is worth; alerts; and can retrain."""

    crd: ClassVar[CRDInfo] = CRDInfo(
        kind="ModelMonitor",
        name_rule=NameRule("it labels the ModelBuilds it starts for retraining"),
        plural="modelmonitors",
        short_names=("mm",),
        printer_columns=(
            PrinterColumn("Deployment", ".spec.deployment"),
            condition_column("Drift", "DriftDetected"),
            condition_column("Degraded", "PerformanceDegraded"),
            PrinterColumn("Estimated", ".status.performance[0].estimated", type="number"),
            PrinterColumn("Realized", ".status.performance[0].realized", type="number"),
            PrinterColumn("Metric", ".status.performance[0].metric", priority=1),
            PrinterColumn("Error-Rate", ".status.errorRate", type="number"),
            PrinterColumn("Last-Check", ".status.lastCheckTime", type="date"),
            condition_column("Ready", "Ready", priority=1),
            AGE,
        ),
    )

    spec: ModelMonitorSpec
    status: ModelMonitorStatus | None = None
