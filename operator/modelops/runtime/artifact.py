"""Save the fitted model as a BentoML model with its baseline in a local folder, and upload the folder to the
build's artifacts folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fsspec

from modelops.contract.training import BASELINE_FILE, MODEL_FILE
from modelops.evidence.signature import sha256_file


def _upload(local: Path, uri: str) -> None:
    with local.open("rb") as source, fsspec.open(uri, "wb", auto_mkdir=True) as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)


def save(
    folder: Path, *, model_name: str, estimator: Any, metadata: dict[str, Any], baseline: dict[str, Any]
) -> tuple[str, str]:
    """Write the model file and the baseline into `folder`; returns their digests (model, baseline)."""
    import bentoml

    saved = bentoml.sklearn.save_model(
        model_name,
        estimator,
        signatures={"predict": {"batchable": True}, "predict_proba": {"batchable": True}},
        metadata=metadata,
        custom_objects={"baseline": baseline},
    )
    folder.mkdir(parents=True, exist_ok=True)
    bentoml.models.export_model(saved.tag, str(folder / MODEL_FILE))
    (folder / BASELINE_FILE).write_text(json.dumps(baseline))
    return sha256_file(folder / MODEL_FILE), sha256_file(folder / BASELINE_FILE)


def upload(files: list[Path], destination: str) -> None:
    """Upload local files into the `destination` folder, each under its own name."""
    for local in files:
        _upload(local, f"{destination}/{local.name}")
