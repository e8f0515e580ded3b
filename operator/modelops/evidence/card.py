"""The model card: what the model is for and how good it is, from the build's evidence alone.

The trainer writes it as a CycloneDX ML-BOM (`model-card.json`, canonical JSON so that anyone rebuilding it from
the ModelVersion's record gets the same bytes) and signs it with the model. What comes later (approval, champion,
what serves) is not in the signed card: `modelops card` adds it from the cluster and says which part is which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from modelops.contract.training import Threshold

CARD_FILE = "model-card.json"
CYCLONEDX_VERSION = "1.6"


@dataclass(frozen=True)
class CardFacts:
    """What a build knows of its model when it signs it; the ModelVersion records the same facts."""

    model: str
    namespace: str
    build: str
    task: str
    artifact_digest: str
    dataset_uri: str
    dataset_digest: str
    estimator: str
    parameters: Mapping[str, Any]
    metrics: Mapping[str, float]
    #: Held-out metrics per declared slice (empty for a slice with too few rows).
    slices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    thresholds: Sequence[Threshold] = ()
    intended_use: str | None = None
    limitations: Sequence[str] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def cyclonedx(facts: CardFacts) -> dict[str, Any]:
    """The card as a CycloneDX 1.6 ML-BOM: one machine-learning-model component and the dataset it was trained on."""

    def bar(threshold: Threshold) -> str:
        bounds = [f"min {threshold.min!r}"] if threshold.min is not None else []
        return ", ".join(bounds + ([f"max {threshold.max!r}"] if threshold.max is not None else []))

    considerations: dict[str, Any] = {}
    if facts.intended_use:
        considerations["useCases"] = [facts.intended_use]
    if facts.limitations:
        considerations["technicalLimitations"] = list(facts.limitations)
    model: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": "model",
        "group": facts.namespace,
        "name": facts.model,
        "hashes": [{"alg": "SHA-256", "content": _hex(facts.artifact_digest)}],
        "modelCard": {
            "modelParameters": {
                "task": facts.task,
                "architectureFamily": facts.estimator.rsplit(".", 1)[-1].split(":")[-1],
                "modelArchitecture": facts.estimator,
                "datasets": [{"ref": "dataset"}],
            },
            "quantitativeAnalysis": {
                "performanceMetrics": [
                    {"type": name, "value": repr(float(value)), "slice": part}
                    for part, measured in (("holdout", facts.metrics), *sorted(facts.slices.items()))
                    for name, value in sorted(measured.items())
                ]
            },
            **({"considerations": considerations} if considerations else {}),
        },
        "properties": [
            {"name": "modelops:build", "value": facts.build},
            *({"name": f"modelops:parameter:{k}", "value": _json(v)} for k, v in sorted(facts.parameters.items())),
            *({"name": f"modelops:threshold:{t.metric}", "value": bar(t)} for t in facts.thresholds),
            *({"name": f"modelops:{k}", "value": v} for k, v in sorted(facts.extra.items())),
        ],
    }
    dataset = {
        "type": "data",
        "bom-ref": "dataset",
        "name": facts.dataset_uri,
        "hashes": [{"alg": "SHA-256", "content": _hex(facts.dataset_digest)}],
        "data": [{"type": "dataset", "name": facts.dataset_uri, "contents": {"url": facts.dataset_uri}}],
        "properties": [{"name": "modelops:digest", "value": "SHA-256 of the rows after the privacy rules"}],
    }
    return {
        "bomFormat": "CycloneDX",
        "specVersion": CYCLONEDX_VERSION,
        "version": 1,
        "metadata": {"component": {"type": "machine-learning-model", "bom-ref": "model", "name": facts.model}},
        "components": [model, dataset],
    }


def _json(value: Any) -> str:
    return rfc8785.dumps(value).decode()


def canonical(card: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON: the same card gives the same bytes, whichever language wrote its numbers."""
    return rfc8785.dumps(card)
