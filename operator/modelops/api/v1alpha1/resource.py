"""The base of a custom resource model and the facts its CRD needs beyond the schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from .common import API_VERSION, ApiModel


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
class CRDInfo:
    """Names, columns and subresources of one kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...] = ()
    #: The scale subresource, as (specReplicasPath, statusReplicasPath, labelSelectorPath).
    scale: tuple[str, str, str] | None = None
    singular: str = field(default="")

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
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class CustomResource(ApiModel):
    """A whole object of one of our kinds; subclasses set `crd`, `spec` and `status`."""

    crd: ClassVar[CRDInfo]

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=lambda: ObjectMeta(name=""))
