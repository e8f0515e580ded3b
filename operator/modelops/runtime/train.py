"""The trainer: the command a ModelBuild's Job runs.

read → privacy → validate → split → fit → calibrate → evaluate → baseline → BentoML model → export → result.
Privacy comes first, so raw personal data never reaches the model, the artifacts, the logs or the result.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from modelops.contract.training import (
    BASELINE_FILE,
    CONFIG_FILE_ENV,
    MODEL_FILE,
    SALT_ENV,
    SIGNATURE_FILE,
    SIGNING_KEY_ENV,
    TERMINATION_MESSAGE_LIMIT,
    USER_ERROR_EXIT_CODE,
    Feature,
    TrainConfig,
    TrainResult,
    leave_termination_message,
    pack,
)
from modelops.evidence import card, provenance, signature
from modelops.evidence.card import CARD_FILE, CardFacts
from modelops.evidence.provenance import PROVENANCE_FILE

from . import artifact, calibration, dataset, estimator, evaluation, privacy, validation
from .baseline import baseline, feature_type
from .redact import redact

log = logging.getLogger("modelops.train")
#: Columns named in the result as looking personal (the log names them all); the result must fit in 4 KB.
MAX_NAMED = 20


class TrainingError(ValueError):
    """A failure the user can fix; its message is the build's failure reason."""


def train(config: TrainConfig, salt: bytes | None) -> TrainResult:
    from sklearn.model_selection import train_test_split

    started, started_at = time.monotonic(), datetime.datetime.now(datetime.UTC)
    frame = dataset.load(config.dataset_uri, config.dataset_format)
    unprotected = privacy.unprotected(frame, {*config.drop, *config.hash, config.target})
    for column in unprotected:
        log.warning("column %r looks like %s and no privacy rule covers it", column.name, column.looks_like)
    frame = privacy.protect(frame, drop=config.drop, hash_columns=config.hash, salt=salt)
    log.info("read %d rows and %d columns (after privacy rules)", len(frame), len(frame.columns))

    problems = validation.violations(frame, config.columns, config.target)
    if problems:
        raise TrainingError("data validation failed: " + "; ".join(problems))
    digest = dataset.digest(frame)

    declared = {c.name: c.type for c in config.columns}
    x = frame.drop(columns=[config.target])
    y = frame[config.target]
    types = {c: declared.get(c) or feature_type(x[c]) for c in x.columns}
    x_train, x_test, y_train, y_test = train_test_split(
        x,
        y,
        test_size=config.test_size,
        random_state=config.random_seed,
        stratify=_stratified(y) if config.task == "classification" else None,
    )
    model = estimator.fit(
        estimator=config.estimator,
        function=config.function,
        params=config.params,
        seed=config.random_seed,
        types=types,
        x=x_train,
        y=y_train,
    )
    if config.task == "classification" and config.calibration != "None":
        # half the held-out rows calibrate, the other half (never seen by model or calibrator) give the metrics
        x_calibrate, x_test, y_calibrate, y_test = train_test_split(
            x_test, y_test, test_size=0.5, random_state=config.random_seed, stratify=_stratified(y_test)
        )
        model = calibration.calibrate(model, config.calibration, x_calibrate, y_calibrate)
        log.info("calibrated the probabilities (%s) on %d held-out rows", config.calibration, len(x_calibrate))
    metrics = evaluation.evaluate(config.task, model, x_test, y_test, config.metrics)
    log.info("held-out metrics: %s", metrics)
    sliced = evaluation.by_slice(config.task, model, x_test, y_test, config.metrics, config.slices, config.hash)
    for name, measured in sliced.items():
        log.info("held-out metrics of slice %s: %s", name, measured or "none (too few rows)")

    stats = baseline(x, types, model.predict(x), config.task)
    metadata = {
        "build": config.build,
        "task": config.task,
        "datasetDigest": digest,
        "features": [{"name": c, "type": t} for c, t in types.items()],
        "metrics": metrics,
        **({"calibration": config.calibration} if config.task == "classification" else {}),
    }
    key = os.environ.get(SIGNING_KEY_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        # the folder's name is the signature's subject: the model's name
        folder = Path(tmp) / config.model
        artifact_digest, baseline_digest = artifact.save(
            folder, model_name=config.model, estimator=model, metadata=metadata, baseline=stats
        )
        bundle = None
        if key:
            bundle = sign(config, folder, key, artifact_digest, digest, metrics, sliced, started_at)
            (Path(tmp) / SIGNATURE_FILE).write_text(bundle)
        artifact.upload(
            [*sorted(folder.iterdir()), *([Path(tmp) / SIGNATURE_FILE] if bundle else [])], config.artifacts_folder
        )
    uri = f"{config.artifacts_folder}/{MODEL_FILE}"
    log.info(
        "exported %s (%s)%s in %.1fs",
        uri,
        artifact_digest,
        ", signed" if bundle else "",
        time.monotonic() - started,
    )
    result = TrainResult(
        ok=True,
        artifact_uri=uri,
        artifact_digest=artifact_digest,
        baseline_uri=f"{config.artifacts_folder}/{BASELINE_FILE}",
        baseline_digest=baseline_digest,
        dataset_digest=digest,
        metrics=metrics,
        slice_metrics=sliced or None,
        rows=len(frame),
        features=[Feature.model_validate({"name": c, "type": t}) for c, t in types.items()],
        unprotected=unprotected[:MAX_NAMED] or None,
        signature=pack(bundle) if bundle else None,
    )
    if len(result.to_message().encode()) > TERMINATION_MESSAGE_LIMIT:
        raise TrainingError(
            f"the result is larger than the trainer's {TERMINATION_MESSAGE_LIMIT}-byte answer: declare fewer "
            "evaluation.slices or evaluation.metrics, or shorter slice names"
        )
    return result


def sign(
    config: TrainConfig,
    folder: Path,
    key: str,
    artifact_digest: str,
    dataset_digest: str,
    metrics: dict[str, float],
    sliced: dict[str, dict[str, float]],
    started_at: datetime.datetime,
) -> str:
    """Write the model card and the provenance into the folder, sign the whole folder, and return the bundle."""
    facts = card_facts(config, artifact_digest, dataset_digest, metrics, sliced)
    (folder / CARD_FILE).write_bytes(card.canonical(card.cyclonedx(facts)))
    build = provenance.BuildFacts(
        namespace=config.namespace,
        build=config.build,
        build_uid=config.build_uid,
        model=config.model,
        task=config.task,
        model_file=MODEL_FILE,
        model_digest=artifact_digest,
        dataset_uri=config.dataset_uri,
        dataset_digest=dataset_digest,
        estimator=facts.estimator,
        parameters=config.params,
        internal={
            "testSize": config.test_size,
            "randomSeed": config.random_seed,
            **({"calibration": config.calibration} if config.task == "classification" else {}),
        },
        trainer_image=config.trainer_image,
        builder=config.builder,
        started=_timestamp(started_at),
        finished=_timestamp(datetime.datetime.now(datetime.UTC)),
    )
    (folder / PROVENANCE_FILE).write_bytes(card.canonical(provenance.statement(build)))
    try:
        return signature.sign(folder, Path(key))
    except (OSError, ValueError) as error:
        raise TrainingError(f"cannot sign with the key in spec.signing.keySecretRef: {type(error).__name__}") from None


def card_facts(
    config: TrainConfig,
    artifact_digest: str,
    dataset_digest: str,
    metrics: dict[str, float],
    sliced: dict[str, dict[str, float]],
) -> CardFacts:
    return CardFacts(
        model=config.model,
        namespace=config.namespace,
        build=config.build,
        task=config.task,
        artifact_digest=artifact_digest,
        dataset_uri=config.dataset_uri,
        dataset_digest=dataset_digest,
        estimator=config.estimator or config.function or "",
        parameters=config.params,
        metrics=metrics,
        slices=sliced,
        thresholds=config.thresholds,
        intended_use=config.intended_use,
        limitations=config.limitations,
    )


def _timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stratified(y: Any) -> Any:
    """Split keeping each class's share, where every class has two rows to split."""
    return y if y.value_counts().min() >= 2 else None


#: Failures whose messages the trainer composed (they name fields and columns, never a value of the data).
OURS = (
    TrainingError,
    calibration.CalibrationError,
    dataset.DatasetError,
    privacy.PrivacyError,
    estimator.EstimatorError,
    evaluation.EvaluationError,
)


class _Redacting(logging.Filter):
    """Warnings raised by libraries (as `py.warnings` log records) may quote data: mask it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


def run() -> tuple[TrainResult, int]:
    """The result and the exit code: USER_ERROR_EXIT_CODE for what a retry cannot fix, 1 for what it might."""
    try:
        config = TrainConfig.model_validate_json(Path(os.environ[CONFIG_FILE_ENV]).read_text())
    except (KeyError, OSError, ValueError):
        error = f"the trainer needs its configuration in the file ${CONFIG_FILE_ENV}"
        return TrainResult(ok=False, error=error), USER_ERROR_EXIT_CODE
    try:
        return train(config, os.environ.get(SALT_ENV, "").encode() or None), 0
    except OURS as error:
        return TrainResult(ok=False, error=str(error)), USER_ERROR_EXIT_CODE
    except ValueError as error:  # a library's refusal of the data: its message may quote values
        return TrainResult(ok=False, error=f"training failed: {redact(str(error))}"), USER_ERROR_EXIT_CODE
    except Exception as error:  # unexpected, maybe passing: reported by type only, and retried
        log.error("training failed: %s", redact("".join(traceback.format_exception(error))))
        return TrainResult(ok=False, error=f"trainer crashed: {type(error).__name__}"), 1


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addFilter(_Redacting())
    result, exit_code = run()
    if not leave_termination_message(result.to_message()):
        log.warning("cannot write the termination message")
    if not result.ok:
        log.error("%s", result.error)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
