"""The trainer: the command a ModelBuild's Job runs.

read → privacy → validate → split → fit → evaluate → baseline → BentoML model → export → result.
Privacy comes first, so raw personal data never reaches the model, the artifacts, the logs or the result.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from . import artifact, dataset, estimator, evaluation, privacy, validation
from .baseline import baseline, feature_type
from .contract import CONFIG_ENV, SALT_ENV, USER_ERROR_EXIT_CODE, Feature, TrainConfig, TrainResult

log = logging.getLogger("modelops.train")
TERMINATION_LOG = "/dev/termination-log"


class TrainingError(ValueError):
    """A failure the user can fix; its message is the build's failure reason."""


def train(config: TrainConfig, salt: bytes | None) -> TrainResult:
    from sklearn.model_selection import train_test_split

    started = time.monotonic()
    frame = dataset.load(config.dataset_uri, config.dataset_format)
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
    stratify = y if config.task == "classification" and y.value_counts().min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.test_size, random_state=config.random_seed, stratify=stratify
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
    metrics = evaluation.evaluate(config.task, model, x_test, y_test, config.metrics)
    log.info("held-out metrics: %s", metrics)

    stats = baseline(x, types, model.predict(x), config.task)
    uri, artifact_digest, baseline_uri = artifact.export(
        model_name=config.model,
        estimator=model,
        metadata={
            "build": config.build,
            "task": config.task,
            "datasetDigest": digest,
            "features": [{"name": c, "type": t} for c, t in types.items()],
            "metrics": metrics,
        },
        baseline=stats,
        folder=artifact.version_folder(config.artifacts_uri, config.model, config.build),
    )
    log.info("exported %s (%s) in %.1fs", uri, artifact_digest, time.monotonic() - started)
    return TrainResult(
        ok=True,
        artifact_uri=uri,
        artifact_digest=artifact_digest,
        baseline_uri=baseline_uri,
        dataset_digest=digest,
        metrics=metrics,
        rows=len(frame),
        features=[Feature(name=c, type=t) for c, t in types.items()],  # type: ignore[arg-type]
    )


EXPECTED = (
    TrainingError,
    dataset.DatasetError,
    privacy.PrivacyError,
    estimator.EstimatorError,
    ValueError,
)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    termination = Path(os.environ.get("MODELOPS_TERMINATION_LOG", TERMINATION_LOG))
    exit_code = USER_ERROR_EXIT_CODE
    try:
        config = TrainConfig.model_validate_json(os.environ[CONFIG_ENV])
        salt = os.environ.get(SALT_ENV, "").encode() or None
        result = train(config, salt)
    except KeyError:
        result = TrainResult(ok=False, error=f"the trainer needs its configuration in ${CONFIG_ENV}")
    except EXPECTED as error:
        result = TrainResult(ok=False, error=str(error))
    except Exception as error:  # unexpected, maybe passing: reported by type only, and retried
        log.exception("training failed")
        result = TrainResult(ok=False, error=f"trainer crashed: {type(error).__name__}")
        exit_code = 1
    message = result.to_message()
    try:
        termination.write_text(message)
    except OSError:
        log.warning("cannot write the termination message to %s", termination)
    if not result.ok:
        log.error("%s", result.error)
        return exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
