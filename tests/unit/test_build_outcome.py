"""A ModelBuild read back from its training Job: the phase, result and reason a person sees; what refuses a build
before its Job; what a trainer may claim; the ModelVersion a build records, and which one it adopts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelops.api.v1alpha1 import ModelVersion
from modelops.resources import meta, modelbuild
from modelops.resources.modelbuild import Outcome, outcome
from modelops.resources.policy import Policy
from tests.support.objects import (
    DIGEST,
    ESTIMATOR,
    FINISHED,
    FOLDER,
    IMAGE,
    RUNNING,
    STARTED,
    build,
    condition,
    exited,
    job,
    pod,
    result,
    waiting,
)

BUILD = build()
BACKOFF = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
USER_ERROR = (
    "PodFailurePolicy",
    "Container trainer for pod team-a/b1-train-x7k2p failed with exit code 2 matching FailJob rule at index 0",
)


def completed(**status: Any) -> dict[str, Any]:
    return job(condition("Complete"), startTime=STARTED, completionTime=FINISHED, succeeded=1, **status)


def failed(reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    return job(condition("Failed", reason, message), startTime=STARTED, failed=1)


def failure(reason: str, message: str) -> Outcome:
    return Outcome("Failed", reason=reason, message=message, started=STARTED, finished=FINISHED)


# -- the phase -----------------------------------------------------------------------------------------------


def test_a_build_whose_job_is_not_made_yet_is_pending() -> None:
    assert outcome(BUILD, None, []) == Outcome("Pending")


def test_a_job_the_job_controller_has_not_started_is_pending() -> None:
    assert outcome(BUILD, job(), []) == Outcome("Pending")
    assert outcome(BUILD, job(), [pod(waiting("ContainerCreating"))]) == Outcome("Pending")


@pytest.mark.parametrize(
    "state", [RUNNING, waiting("ContainerCreating"), waiting("PodInitializing")], ids=["running", "creating", "init"]
)
def test_a_job_with_an_active_pod_is_running_since_its_start(state: dict) -> None:
    assert outcome(BUILD, job(active=1, startTime=STARTED), [pod(state)]) == Outcome("Running", started=STARTED)


def test_between_two_attempts_a_build_is_still_running() -> None:
    retrying = job(startTime=STARTED, failed=1)  # the first pod failed, the next one is not made yet
    assert outcome(BUILD, retrying, [pod(exited(1))]) == Outcome("Running", started=STARTED)


@pytest.mark.parametrize(
    "conditions",
    [
        [condition("Failed", "BackoffLimitExceeded", status="False")],
        [condition("FailureTarget", *BACKOFF)],  # the Job has decided, its pods are still terminating
        [condition("SuccessCriteriaMet", "CompletionsReached")],
    ],
    ids=["not-true", "failure-target", "success-criteria-met"],
)
def test_a_build_waits_for_the_jobs_final_condition(conditions: list[dict]) -> None:
    running = job(*conditions, active=1, startTime=STARTED)
    assert outcome(BUILD, running, [pod(RUNNING)]).phase == "Running"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("CreateContainerConfigError", 'secret "salt" not found'),
        ("ErrImagePull", 'failed to pull and unpack image "localhost/trainer:nope": not found'),
        ("ImagePullBackOff", 'Back-off pulling image "localhost/trainer:nope"'),
        ("CreateContainerError", "failed to generate container spec"),
    ],
)
def test_a_trainer_that_cannot_start_says_what_it_waits_for(reason: str, message: str) -> None:
    """The Job counts the pod active all along: only its container status says that a person must act."""
    waits = job(active=1, startTime=STARTED)
    found = outcome(BUILD, waits, [pod(waiting(reason, message))])
    assert found == Outcome(
        "Pending", reason="TrainerCannotStart", message=f"the trainer cannot start: {reason}: {message}"
    )


# -- success -------------------------------------------------------------------------------------------------


def test_a_completed_job_succeeds_with_the_trainers_result_and_its_times() -> None:
    trained = result()
    found = outcome(BUILD, completed(), [pod(exited(0, trained))])
    assert found == Outcome("Succeeded", result=trained, started=STARTED, finished=FINISHED)


def test_after_a_retry_the_attempt_that_succeeded_gives_the_result() -> None:
    first = pod(exited(1, result(ok=False, error="connection reset")), name="b1-train-aaaaa", created=STARTED)
    second = pod(exited(0, result(rows=570)), name="b1-train-bbbbb", created="2026-03-01T10:03:00Z")
    found = outcome(BUILD, completed(failed=1), [second, first])
    assert found.phase == "Succeeded" and found.result is not None and found.result.rows == 570


@pytest.mark.parametrize(
    "message",
    [
        None,
        "",
        "Traceback (most recent call last):\n  File train.py",  # something else wrote the termination log
        '{"ok": true, "artifactUri": "s3://models/team-a/cancer/b1/m", "metr',  # cut short
        '{"ok": "perhaps"}',
        '["ok"]',
        '{"ok": false, "error": "the trainer gave up"}',  # a failure's word on a Job that completed
    ],
    ids=["none", "empty", "traceback", "truncated", "not-a-bool", "not-an-object", "not-ok"],
)
def test_a_completed_job_without_a_readable_result_fails_the_build(message: str | None) -> None:
    found = outcome(BUILD, completed(), [pod(exited(0, message))])
    assert (found.phase, found.reason, found.result) == ("Failed", "ResultMissing", None)
    assert found.message == "the trainer succeeded but left no result"


def test_a_completed_job_without_a_result_still_says_when_it_ran() -> None:
    found = outcome(BUILD, completed(), [pod(exited(0))])
    assert (found.phase, found.started, found.finished) == ("Failed", STARTED, FINISHED)


def test_only_the_trainer_containers_word_counts() -> None:
    sidecar = exited(0, result(), reason="Completed")
    found = outcome(BUILD, completed(), [pod(exited(0), **{"log-shipper": sidecar})])
    assert found.reason == "ResultMissing"
    oom_sidecar = exited(137, reason="OOMKilled")
    refused = result(ok=False, error="estimator sklearn.nope.Model cannot be imported")
    found = outcome(BUILD, failed(*USER_ERROR), [pod(exited(2, refused), **{"log-shipper": oom_sidecar})])
    assert found.reason == "TrainingFailed"


# -- failure -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_failed", "trainer", "expected"),
    [
        (  # exit code 2: the pod failure policy fails the Job at once, the trainer says why
            USER_ERROR,
            exited(2, result(ok=False, error="data validation failed: column 'age': 3 values below minimum 0")),
            ("DataValidationFailed", "data validation failed: column 'age': 3 values below minimum 0"),
        ),
        (
            USER_ERROR,
            exited(2, result(ok=False, error="estimator sklearn.nope.Model cannot be imported")),
            ("TrainingFailed", "estimator sklearn.nope.Model cannot be imported"),
        ),
        (  # another code: retried until the backoff limit, the trainer's last word still tells
            BACKOFF,
            exited(1, result(ok=False, error="s3://models: connection reset by peer")),
            ("TrainingFailed", "s3://models: connection reset by peer"),
        ),
        (BACKOFF, exited(139, reason="Error"), BACKOFF),  # died without a word: the Job's
        (USER_ERROR, exited(2), USER_ERROR),
        (BACKOFF, exited(1, "Segmentation fault"), BACKOFF),  # a message that is no result
        ((None, None), exited(1), ("JobFailed", "the training Job failed")),
    ],
    ids=["data", "user-error", "retried", "no-word", "user-error-no-word", "not-a-result", "no-reason"],
)
def test_a_failed_job_says_why_in_the_trainers_words_or_else_the_jobs(
    job_failed: tuple, trainer: dict, expected: tuple[str, str]
) -> None:
    assert outcome(BUILD, failed(*job_failed), [pod(trainer)]) == failure(*expected)


@pytest.mark.parametrize(
    ("resources", "limit"),
    [
        ({"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}}, "2Gi"),
        ({"requests": {"memory": "1Gi"}}, "?"),
        (None, "?"),
    ],
    ids=["limit", "requests-only", "no-resources"],
)
def test_a_trainer_out_of_memory_is_told_which_limit_to_raise(resources: dict | None, limit: str) -> None:
    trainer = {**ESTIMATOR, **({"resources": resources} if resources else {})}
    found = outcome(build(trainer=trainer), failed(*BACKOFF), [pod(exited(137, reason="OOMKilled"))])
    assert found == failure(
        "OOMKilled", f"the trainer ran out of memory (limit {limit}): raise spec.trainer.resources.limits.memory"
    )


def test_a_trainer_past_its_deadline_is_told_which_field_bounds_it() -> None:
    slow = build(trainer={**ESTIMATOR, "activeDeadline": "30m"})
    stopped = pod(exited(143, reason="Error"))  # SIGTERM, no word
    found = outcome(slow, failed("DeadlineExceeded", "Job was active longer than specified deadline"), [stopped])
    assert found == failure("DeadlineExceeded", "training ran longer than spec.trainer.activeDeadline (30m)")


def test_of_several_attempts_the_newest_that_said_why_is_reported() -> None:
    def attempt(minute: int, trainer: dict) -> dict:
        return pod(trainer, name=f"b1-train-{minute:05d}", created=f"2026-03-01T10:0{minute}:00Z")

    oldest = attempt(0, exited(1, result(ok=False, error="first: connection reset")))
    middle = attempt(2, exited(1, result(ok=False, error="second: connection reset")))
    newest = attempt(4, exited(1))  # killed before it could write
    found = outcome(build(trainer={**ESTIMATOR, "retries": 2}), failed(*BACKOFF), [oldest, newest, middle])
    assert found == failure("TrainingFailed", "second: connection reset")
    ran_out = attempt(5, exited(137, reason="OOMKilled"))
    assert outcome(BUILD, failed(*BACKOFF), [oldest, ran_out]).reason == "OOMKilled"


# -- refused before any Job ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [
        ("s3://models/{namespace}/", True),
        ("s3://models/{namespace}/cancer/", True),
        ("s3://models/team-a/cancer/b1", True),  # exactly the build's folder
        ("s3://models/team-a/cancer/b1x/", False),
        ("s3://models/team-b/", False),
        ("s3://models/{namespace}/other-model/", False),
        ("gs://models/{namespace}/", False),
    ],
)
def test_a_build_may_write_only_inside_its_namespaces_locations(prefix: str, allowed: bool) -> None:
    problem = modelbuild.spec_problem(BUILD, Policy(artifact_prefixes=(prefix,)))
    if allowed:
        assert problem is None
    else:
        reason, message = problem or ("", "")
        location = prefix.replace("{namespace}", "team-a")
        assert reason == "ArtifactsNotAllowed"
        assert f"{FOLDER} is outside the artifact locations of namespace team-a ({location})" in message


def test_a_build_whose_declared_columns_overflow_the_jobs_annotation_is_refused() -> None:
    columns = [{"name": f"{i:04d}" + "c" * 250, "type": "number", "minimum": 0, "maximum": 1} for i in range(1000)]
    dataset = {"uri": "sklearn://breast_cancer", "target": "target"}
    reason, message = modelbuild.spec_problem(build(dataset={**dataset, "columns": columns}), Policy()) or ("", "")
    assert reason == "ConfigTooLarge" and "more than 200 KB" in message and "spec.dataset.columns" in message
    assert modelbuild.spec_problem(build(dataset={**dataset, "columns": columns[:10]}), Policy()) is None


# -- what a trainer may claim --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "problem"),
    [
        ({"baseline_uri": f"{FOLDER}/baseline.json"}, None),
        ({"baseline_uri": "s3://models/team-a/cancer/b0/baseline.json"}, "baselineUri"),
        ({"artifact_uri": f"{FOLDER}/model.bentomodel?versionId=1"}, "artifactUri"),
        ({"artifact_uri": f"{FOLDER}/model.bentomodel#x"}, "artifactUri"),
        ({"artifact_uri": None}, "names no artifact"),
        ({"artifact_digest": None}, "names no artifact"),
        ({"artifact_digest": "sha256:" + "A" * 64}, "names no artifact"),
        ({"artifact_digest": "sha256:" + "a" * 63}, "names no artifact"),
    ],
)
def test_a_trainer_may_claim_only_a_digested_artifact_inside_its_folder(claim: dict, problem: str | None) -> None:
    found = modelbuild.result_problem(BUILD, result(**claim))
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    "claim",
    [
        {"artifact_uri": f"{FOLDER}/.."},  # the model's folder, above the build's
        {"baseline_uri": f"{FOLDER}/x/.."},
        {"baseline_uri": f"{FOLDER}/baseline.json", "baseline_digest": "md5:1"},
    ],
    ids=["trailing-dots", "baseline-trailing-dots", "baseline-digest"],
)
def test_a_claim_the_api_server_would_refuse_to_record_is_rejected_first(claim: dict) -> None:
    assert modelbuild.result_problem(BUILD, result(**claim)) is not None


def test_the_unprotected_columns_are_named_with_what_they_look_like_and_the_fix() -> None:
    found = result(
        unprotected=[
            {"name": "email", "looks_like": "e-mail addresses"},
            {"name": "phone", "looks_like": "phone numbers"},
        ]
    )
    message = modelbuild.unprotected_message(found.unprotected or [])
    assert "'email' (e-mail addresses), 'phone' (phone numbers) look personal" in message
    assert message.endswith("add them to spec.privacy.drop or spec.privacy.hash")
    assert modelbuild.unprotected_message([]) == "no column looks personal, or every one is covered by spec.privacy"


# -- the version it records ----------------------------------------------------------------------------------


def test_the_record_is_a_valid_model_version_of_its_own_and_outlives_the_build() -> None:
    trained = result(
        baseline_uri=f"{FOLDER}/baseline.json", baseline_digest=DIGEST, features=[{"name": "age", "type": "number"}]
    )
    record = modelbuild.model_version(BUILD, trained, 3, IMAGE)
    assert record["metadata"]["name"] == "cancer-v3" and "ownerReferences" not in record["metadata"]
    labels = record["metadata"]["labels"]
    assert (
        labels[meta.BUILD_LABEL] == "b1" and labels[meta.VERSION_LABEL] == "3" and labels[meta.MODEL_LABEL] == "cancer"
    )
    spec = ModelVersion.model_validate(record).spec
    assert (spec.version, spec.artifact.uri, spec.artifact.digest) == (3, f"{FOLDER}/model.bentomodel", DIGEST)
    assert spec.baseline_uri == f"{FOLDER}/baseline.json" and spec.baseline_digest == DIGEST
    assert [f.name for f in spec.features or []] == ["age"] and spec.metrics == {"accuracy": 0.95, "f1": 0.94}
    assert spec.approval is not None and spec.approval.state == "Pending"
    lineage = spec.lineage
    assert lineage is not None and (lineage.build, lineage.dataset_uri, lineage.trainer_image) == (
        "b1",
        "sklearn://breast_cancer",
        IMAGE,
    )
    assert (lineage.estimator, lineage.parameters) == ("sklearn.linear_model.LogisticRegression", {"C": 1.0})
    bare = modelbuild.model_version(BUILD, result(), 1, IMAGE)["spec"]
    assert not {"baselineUri", "baselineDigest", "features"} & bare.keys()


def test_the_lineage_names_the_function_its_parameters_and_the_builds_own_image() -> None:
    own = build(trainer={"function": "team.models:fit", "params": {"depth": 3}, "image": "localhost/team:2"})
    lineage = modelbuild.model_version(own, result(), 1, IMAGE)["spec"]["lineage"]
    assert (lineage["estimator"], lineage["parameters"], lineage["trainerImage"]) == (
        "team.models:fit",
        {"depth": 3},
        "localhost/team:2",
    )


@pytest.mark.parametrize(
    ("task", "evaluation", "approval", "expected"),
    [
        ("classification", None, None, {"autoApprove": False, "allowedRegression": 0.0, "primaryMetric": "accuracy"}),
        (
            "regression",
            None,
            {"mode": "Manual"},
            {"autoApprove": False, "allowedRegression": 0.0, "primaryMetric": "r2"},
        ),
        (
            "classification",
            {"primaryMetric": "f1", "allowedRegression": 0.01, "thresholds": [{"metric": "f1", "min": 0.9}]},
            {"mode": "AutoWhenValidated"},
            {
                "autoApprove": True,
                "allowedRegression": 0.01,
                "primaryMetric": "f1",
                "thresholds": [{"metric": "f1", "min": 0.9}],
            },
        ),
    ],
    ids=["defaults", "regression", "policy"],
)
def test_the_record_carries_the_builds_validation_policy(
    task: str, evaluation: dict | None, approval: dict | None, expected: dict
) -> None:
    spec: dict[str, Any] = {"task": task}
    if evaluation:
        spec["evaluation"] = evaluation
    if approval:
        spec["approval"] = approval
    assert modelbuild.model_version(build(**spec), result(), 1, IMAGE)["spec"]["validation"] == expected


def test_a_version_read_back_from_the_cluster_is_still_the_builds_record() -> None:
    record = modelbuild.model_version(BUILD, result(), 2, IMAGE)
    stored = json.loads(json.dumps(record))
    stored["spec"]["lineage"]["parameters"]["C"] = 1  # the API server writes 1.0 as 1
    stored["spec"]["validation"]["allowedRegression"] = 0
    stored["metadata"] |= {"uid": "uid-v2", "resourceVersion": "812", "creationTimestamp": FINISHED}
    stored["spec"]["approval"] = {"state": "Approved", "by": "alice", "reason": "reviewed"}
    stored["status"] = {"stage": "Approved", "approvedBy": "alice"}
    assert modelbuild.is_record_of(stored, record)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("metrics",), {"accuracy": 0.5, "f1": 0.94}),
        (("lineage", "build"), "b2"),
        (("lineage", "trainerImage"), "localhost/other:1"),
        (("lineage", "datasetUri"), "s3://data/other.csv"),
        (("validation", "autoApprove"), True),  # a forged policy
        (("baselineUri",), f"{FOLDER}/baseline.json"),
        (("task",), "regression"),
    ],
)
def test_a_version_that_records_anything_else_is_not_adopted(path: tuple[str, ...], value: Any) -> None:
    record = modelbuild.model_version(BUILD, result(), 2, IMAGE)
    other = json.loads(json.dumps(record))
    *parents, last = path
    target = other["spec"]
    for key in parents:
        target = target[key]
    target[last] = value
    assert not modelbuild.is_record_of(other, record)
