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
#: How many worker processes the server runs (`spec.runtime.workers`).
WORKERS_ENV = "MODELOPS_SERVER_WORKERS"
#: Where a stable server mirrors a share of its requests during a shadow step (the shadow's `/predict`), which
#: percent of them, and the shadow's version number (a label of the comparison's series).
SHADOW_URL_ENV = "MODELOPS_SHADOW_URL"
SHADOW_SHARE_ENV = "MODELOPS_SHADOW_SHARE"
SHADOW_VERSION_ENV = "MODELOPS_SHADOW_VERSION"

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
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The labels of the open-ended bins: above the last numeric edge, and the categories beyond the baseline's top
#: ones; missing values are counted apart.
OPEN_BIN = "+Inf"
OTHER = "__other__"
MISSING = "__missing__"


def bin_label(edge: float) -> str:
    """The label of a numeric bin's upper bound; the drift reader parses it back into the edge with `float`."""
    return repr(float(edge))


#: The column types a dataset declares and a model's features carry; the first two are numeric.
ColumnType = Literal["number", "integer", "boolean", "category", "string"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
NUMERIC_TYPES = ("number", "integer")
