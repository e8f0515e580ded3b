"""What a server container is told (environment), where it listens, and what it exports (metric names, bins)."""

from __future__ import annotations

from typing import Literal, get_args

#: The port a server listens on unless `spec.runtime.port` says otherwise.
SERVER_PORT = 3000

MODEL_URI_ENV = "MODELOPS_MODEL_URI"
MODEL_DIGEST_ENV = "MODELOPS_MODEL_DIGEST"
MODEL_NAME_ENV = "MODELOPS_MODEL"
MODEL_VERSION_ENV = "MODELOPS_MODEL_VERSION"
#: The verified model's tag in the server container's local store (set by `modelops serve` for the service).
MODEL_TAG_ENV = "MODELOPS_MODEL_TAG"
#: The version's signature bundle, and the public keys (JSON: name → PEM) it must verify against: the server then
#: downloads every signed file beside the model and loads the model only if all of them match.
SIGNATURE_BUNDLE_ENV = "MODELOPS_SIGNATURE_BUNDLE"
TRUSTED_KEYS_ENV = "MODELOPS_TRUSTED_KEYS"
#: How many worker processes the server runs (`spec.runtime.workers`); unset, one per CPU of the pod.
WORKERS_ENV = "MODELOPS_SERVER_WORKERS"
#: Adaptive batching (`spec.runtime.maxBatchSize`, `maxLatencyMs`): the most requests one model pass predicts
#: together, and the longest a request may wait for its pass before the server sheds it (503) rather than answer late.
MAX_BATCH_SIZE_ENV = "MODELOPS_MAX_BATCH_SIZE"
MAX_LATENCY_MS_ENV = "MODELOPS_MAX_LATENCY_MS"
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_LATENCY_MS = 10_000
#: Where a stable server mirrors a share of its requests during a shadow step (the shadow's `/predict`), which
#: percent of them, and the shadow's version number (a label of the comparison's series).
SHADOW_URL_ENV = "MODELOPS_SHADOW_URL"
SHADOW_SHARE_ENV = "MODELOPS_SHADOW_SHARE"
SHADOW_VERSION_ENV = "MODELOPS_SHADOW_VERSION"

#: Delayed labels (`spec.feedback`): how long (seconds) and how many records' answers a server keeps for a label to
#: join; the headless Service whose addresses are the deployment's serving pods (a label may reach another pod than
#: the one that answered); and this pod's own address among them.
FEEDBACK_RETENTION_ENV = "MODELOPS_FEEDBACK_RETENTION_SECONDS"
FEEDBACK_CAPACITY_ENV = "MODELOPS_FEEDBACK_CAPACITY"
PEERS_ENV = "MODELOPS_PEERS"
POD_IP_ENV = "MODELOPS_POD_IP"
#: The header a caller may name its request with (else the server makes an id); every answer carries the id back.
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
#: Marks labels one server hands its peers, so that they do not hand them on again.
FORWARDED_HEADER = "X-Modelops-Forwarded"

#: The environment every runtime container gets: a writable home on its emptyDir (the root filesystem is
#: read-only), and no usage tracking.
CONTAINER_ENV = (
    ("HOME", "/tmp"),
    ("BENTOML_HOME", "/tmp/bentoml"),
    ("BENTOML_DO_NOT_TRACK", "true"),
)

#: The families a server exports (the exposition adds `_total` to counters and `_bucket` to histograms).
REQUESTS = "modelops_requests"
RECORDS = "modelops_records"
ERRORS = "modelops_request_errors"
#: The kinds of failed requests: invalid input (400), the model failing (500), shed under overload (503).
ErrorKind = Literal["bad_input", "model_error", "overloaded"]
LATENCY = "modelops_request_latency_seconds"
FEATURES = "modelops_feature_observations"
PREDICTIONS = "modelops_prediction_observations"
BASELINE = "modelops_baseline_observations"
#: What a stable server found comparing its answers with its shadow's on the same mirrored records (labels: the
#: stable's model and version, and `shadow_version`): records compared, records whose class agreed (classifiers),
#: the sum of the absolute differences (regressors), and mirrored requests that got no comparable answer, by kind.
SHADOW_COMPARED = "modelops_shadow_compared_records"
SHADOW_AGREED = "modelops_shadow_agreeing_records"
SHADOW_DIFFERENCE = "modelops_shadow_absolute_difference"
SHADOW_FAILURES = "modelops_shadow_failures"
ShadowFailure = Literal["dropped", "unreachable", "rejected"]
#: What a classifier's calibrated probabilities say of its answers before any label (the estimate): per predicted
#: class, the sum of each class's probability (`predicted`, `actual`: the expected confusion matrix); and for two
#: classes, the records and the sum of the positive class's score per score bin (the estimated ROC AUC).
EXPECTED = "modelops_expected_records"
SCORES = "modelops_score_records"
SCORE_SUM = "modelops_score_sum"
#: What labels posted later say of the answers they join (realized): a classifier's confusion matrix (`predicted`,
#: `actual`), its labelled records per score bin and actual class (two classes), a regressor's labelled records and
#: error sums; and every label posted, by outcome.
LABELLED = "modelops_labelled_records"
LABELLED_SCORES = "modelops_labelled_score_records"
LABELLED_VALUES = "modelops_labelled_values"
ABSOLUTE_ERROR = "modelops_labelled_absolute_error"
SQUARED_ERROR = "modelops_labelled_squared_error"
FEEDBACK = "modelops_feedback_labels"
FeedbackOutcome = Literal["joined", "unknown", "rejected"]
#: Classifiers with more classes export no confusion matrix (its series grow with the square of the classes).
MAX_CLASSES = 20
#: The positive class's score is counted on this many bins of equal width in [0, 1].
SCORE_BINS = 100
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The labels of the open-ended bins: above the last numeric edge, and the categories beyond the baseline's top
#: ones; missing values are counted apart.
OPEN_BIN = "+Inf"
OTHER = "__other__"
MISSING = "__missing__"


def bin_label(edge: float) -> str:
    """The label of a numeric bin's upper bound; the drift reader parses it back into the edge with `float`."""
    return repr(float(edge))


def score_bin(index: int) -> str:
    """The label of score bin `index` (1 to SCORE_BINS): its upper bound, as `bin_label` writes it."""
    return bin_label(round(index / SCORE_BINS, 6))


#: The column types a dataset declares and a model's features carry; the first two are numeric.
ColumnType = Literal["number", "integer", "boolean", "category", "string"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
NUMERIC_TYPES = ("number", "integer")
