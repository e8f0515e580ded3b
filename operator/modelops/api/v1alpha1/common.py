"""Types shared by the four resources: the model base, conditions, quantities, references."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "modelops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "modelops"
#: The one Secret of a namespace the operator may read (RBAC names it): the keys its monitors' webhooks name.
ALERTS_SECRET = "modelops-alerts"


class ApiModel(BaseModel):
    """Base of every API type: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_api(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, no unset fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def updated(self, **changes: Any) -> Self:
        """A validated copy with these fields (by their Python names) changed, the others as they were."""
        return self.model_validate({**self.model_dump(exclude_none=True), **changes})


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One CEL validation rule (`x-kubernetes-validations`) with the message a user sees."""
    out: dict[str, str] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def rules(*items: dict[str, str]) -> dict[str, Any]:
    """`json_schema_extra` that attaches CEL rules to a model or a field."""
    return {"x-kubernetes-validations": list(items)}


def immutable(field: str) -> dict[str, Any]:
    """A transition rule that refuses any change to the field it is attached to."""
    return rules(cel("self == oldSelf", f"{field} is immutable", reason="FieldValueForbidden"))


def at_least(field: str, minimum: str, why: str) -> dict[str, str]:
    """A rule on a model with a Duration `field`: it must be at least `minimum` (e.g. `1s`)."""
    return cel(
        f"duration(self.{field}) >= duration('{minimum}')",
        f"{field} must be at least {minimum}: {why}",
        field_path=f".{field}",
    )


#: A Kubernetes quantity: `1`, `500m`, `2Gi`.
Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        }
    ),
]

#: A duration such as `30s`, `5m` or `1h30m` (Go's format, so CEL's `duration()` reads it too).
Duration = Annotated[str, Field(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$", max_length=32)]
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def duration_seconds(value: str) -> float:
    """`1h30m` → 5400.0."""
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


#: A DNS-1035 label short enough that `<name>-v<version>` and `<name>-canary` stay valid names.
ModelName = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", min_length=1, max_length=40)]

#: A DNS-1035 label: what a Service's name must be (lower case letters, digits and '-', starting with a letter).
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

#: The name of a Kubernetes object in the same namespace (DNS-1123 subdomain): a Secret, a ServiceAccount.
ObjectName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)
]

#: A namespace's name (a DNS-1123 label).
NamespaceName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]

#: The name of a ModelDeployment (it names a Service, so a DNS-1035 label).
DeploymentName = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]

#: A `sha256:` digest of a file.
Digest = Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$")]

#: A key of a Secret or ConfigMap.
DataKey = Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", min_length=1, max_length=253)]

#: Where a model or its baseline is stored: a store's URI with no query, fragment or `..` segment, so the path
#: a prefix rule or a namespace folder checks is the path that is read.
StorageUri = Annotated[
    str,
    Field(
        pattern=r"^(file|s3|gs|az)://[^?#]+$",
        max_length=2048,
        json_schema_extra=rules(
            cel("!self.matches('(^|/)[.][.](/|$)')", "a storage URI must not contain a '..' segment")
        ),
    ),
]

#: A container image reference.
Image = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")]

#: A Python import path to a callable, `package.module:function`.
FunctionRef = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", max_length=256)]

#: A Python import path to a class, `package.module.Class`.
ClassRef = Annotated[str, Field(pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$", max_length=256)]

#: A fraction between 0 and 1.
Fraction = Annotated[float, Field(ge=0, le=1)]


class SecretKeyRef(ApiModel):
    """A key of a Secret in the resource's namespace. Its value is read by the operator or the pod, never logged."""

    name: ObjectName = Field(description="Name of the Secret.")
    key: DataKey = Field(description="Key inside the Secret.")


class ResourceRequirements(ApiModel):
    """Compute resources of a container, as in a Pod spec."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, e.g. `{cpu: 500m, memory: 1Gi}`."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources; a container above its memory limit is OOMKilled."
    )


ConditionStatus = Literal["True", "False", "Unknown"]
#: How a version serves: all the traffic but a canary's share, or that share.
Track = Literal["stable", "canary"]


class Condition(ApiModel):
    """A kstatus condition: what Argo CD, Flux and `kubectl wait` read."""

    type: str = Field(max_length=316, description="Condition type: `Ready`, `Reconciling`, `Stalled`, …")
    status: ConditionStatus = Field(description="`True`, `False` or `Unknown`.")
    reason: str | None = Field(default=None, max_length=1024, description="CamelCase machine-readable cause.")
    message: str | None = Field(default=None, max_length=32768, description="What happened, for a person.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The `metadata.generation` this condition was computed from."
    )
    last_transition_time: datetime | None = Field(default=None, description="When `status` last changed.")


def conditions_field() -> Any:
    """The `status.conditions` field, a list keyed by `type` (server-side apply merges it by type)."""
    return Field(
        default=None,
        description="kstatus conditions: `Ready`, `Reconciling`, `Stalled` and kind-specific ones.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class StatusBase(ApiModel):
    """What every status carries."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The `metadata.generation` the operator last acted on."
    )
    conditions: list[Condition] | None = conditions_field()
    kopf: dict[str, Any] | None = Field(
        default=None, description="The operator's handler bookkeeping (Kopf), kept here so metadata stays yours."
    )
