"""Save the fitted model as a BentoML model and export it, with its baseline, to the artifacts URI."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import fsspec

MODEL_FILE = "model.bentomodel"
BASELINE_FILE = "baseline.json"


def _upload(local: Path, uri: str) -> None:
    with local.open("rb") as source, fsspec.open(uri, "wb", auto_mkdir=True) as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def export(
    *, model_name: str, estimator: Any, metadata: dict[str, Any], baseline: dict[str, Any], folder: str
) -> tuple[str, str, str, str]:
    """Returns (artifact URI, artifact digest, baseline URI, baseline digest)."""
    import bentoml

    saved = bentoml.sklearn.save_model(
        model_name,
        estimator,
        signatures={"predict": {"batchable": True}, "predict_proba": {"batchable": True}},
        metadata=metadata,
        custom_objects={"baseline": baseline},
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / MODEL_FILE
        bentoml.models.export_model(saved.tag, str(local))
        digest = sha256_file(local)
        _upload(local, f"{folder}/{MODEL_FILE}")
        baseline_local = Path(tmp) / BASELINE_FILE
        baseline_local.write_text(json.dumps(baseline))
        baseline_digest = sha256_file(baseline_local)
        _upload(baseline_local, f"{folder}/{BASELINE_FILE}")
    return f"{folder}/{MODEL_FILE}", digest, f"{folder}/{BASELINE_FILE}", baseline_digest
