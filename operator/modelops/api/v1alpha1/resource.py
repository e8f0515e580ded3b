"""The base of a custom resource model and the facts its CRD needs beyond the schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from .common import API_VERSION, DNS_LABEL, ApiModel, cel


@dataclass(frozen=True)
class PrinterColumn:
    """A column of `kubectl get`. Priority 1 shows only with `-o wide`."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class NameRule:
    """What an object's own name must be so that every child named or labelled after it is valid: the API server
    refuses a bad name when the object is created, rather than the operator failing on its children later."""

    why: str
    max_length: int = 63
    #: A DNS-1035 label (a Service's name) rather than the default DNS-1123 subdomain.
    label: bool = False

    def to_crd(self) -> list[dict[str, Any]]:
        out = [
            cel(
                f"size(self.metadata.name) <= {self.max_length}",
                f"at most {self.max_length} characters, because {self.why}",
                field_path=".metadata.name",
                reason="FieldValueInvalid",
            )
        ]
        if self.label:
            out.append(
                cel(
                    f"self.metadata.name.matches('{DNS_LABEL}')",
                    "lower case letters, digits and '-', starting with a letter and ending with a "
                    f"letter or digit (a DNS-1035 label), because {self.why}",
                    field_path=".metadata.name",
                    reason="FieldValueInvalid",
                )
            )
        return out


@dataclass(frozen=True)
class CRDInfo:
    """Names, columns and subresources of one kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...] = ()
    #: The scale subresource, as (specReplicasPath, statusReplicasPath, labelSelectorPath).
    scale: tuple[str, str, str] | None = None
    singular: str = field(default="")
    name_rule: NameRule | None = None

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()


def condition_column(name: str, condition: str, **kwargs: Any) -> PrinterColumn:
    """A column showing the status of one condition."""
    return PrinterColumn(name, f'.status.conditions[?(@.type=="{condition}")].status', **kwargs)


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", type="date")


class ObjectMeta(ApiModel):
    """The part of `metadata` the operator reads."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class CustomResource(ApiModel):
    """A whole object of one of our kinds; subclasses set `crd`, `spec` and `status`."""

    crd: ClassVar[CRDInfo]

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=lambda: ObjectMeta(name=""))
