"""Build provenance: an in-toto statement in SLSA provenance v1 form, saying how the model file was made.

Subject: the model file's digest. Its build definition: the ModelBuild (namespace, name, uid), the estimator and its
parameters, the dataset (URI and the digest of its rows after the privacy rules) and the trainer image; its builder:
the ModelOps operator that ran the Job. The trainer writes it beside the model and signs it with the model, so one
signature covers both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PROVENANCE_FILE = "provenance.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://modelops.io/ModelBuild/v1alpha1"
#: The dataset's digest is of its rows after the privacy rules (independent of the file's format), not of a file:
#: a digest-set key of its own says so.
DATA_DIGEST = "modelopsRowsSha256"
_PINNED = re.compile(r"@sha256:([a-f0-9]{64})$")


@dataclass(frozen=True)
class BuildFacts:
    """What the trainer knows of its own build."""

    namespace: str
    build: str
    build_uid: str
    model: str
    task: str
    model_file: str
    model_digest: str
    dataset_uri: str
    dataset_digest: str
    estimator: str
    parameters: Mapping[str, Any]
    internal: Mapping[str, Any]
    trainer_image: str
    builder: str
    started: str
    finished: str


def image_dependency(image: str) -> dict[str, Any]:
    """The trainer image as a resolved dependency: with its digest when the reference pins one."""
    pinned = _PINNED.search(image)
    return {"name": "trainer", "uri": f"oci://{image}", **({"digest": {"sha256": pinned[1]}} if pinned else {})}


def statement(facts: BuildFacts) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.model_file, "digest": {"sha256": facts.model_digest.removeprefix("sha256:")}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "modelBuild": {"namespace": facts.namespace, "name": facts.build, "uid": facts.build_uid},
                    "model": facts.model,
                    "task": facts.task,
                    "estimator": facts.estimator,
                    "parameters": dict(facts.parameters),
                    "dataset": facts.dataset_uri,
                },
                "internalParameters": dict(facts.internal),
                "resolvedDependencies": [
                    {
                        "name": "dataset",
                        "uri": facts.dataset_uri,
                        "digest": {DATA_DIGEST: facts.dataset_digest.removeprefix("sha256:")},
                    },
                    image_dependency(facts.trainer_image),
                ],
            },
            "runDetails": {
                "builder": {"id": facts.builder},
                "metadata": {
                    "invocationId": facts.build_uid,
                    "startedOn": facts.started,
                    "finishedOn": facts.finished,
                },
            },
        },
    }
