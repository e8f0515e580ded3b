"""A ModelVersion's checks and stage: thresholds, the champion, the approval."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from modelops.api.v1alpha1 import ModelDeploymentStatus, ModelVersion, ModelVersionStatus
from modelops.api.v1alpha1.common import Track
from modelops.api.v1alpha1.modelversion import MAX_SERVED_BY, CheckResult, ServingRef
from modelops.contract.training import LOWER_IS_BETTER

from . import trust
from .conditions import kstatus, set_condition
from .events import Event
from .policy import Policy

#: No administrator settings: no trusted key, so no signature check.
NO_POLICY = Policy()


def checks(version: ModelVersion, champion: ModelVersion | None, trusted: Policy = NO_POLICY) -> list[CheckResult]:
    """Every bar the version must clear: its signature where keys are trusted, its thresholds, then the champion on
    the primary metric."""
    spec = version.spec
    policy = spec.validation
    signing = spec.signature is not None or bool(trusted.trusted_keys) or not trusted.unsigned_allowed()
    results: list[CheckResult] = [signature_check(version, trusted)] if signing else []
    for bar in (policy.thresholds if policy else None) or []:
        value = spec.metrics.get(bar.metric)
        if value is None:
            results.append(
                CheckResult(name=f"threshold:{bar.metric}", passed=False, message=f"{bar.metric} was not measured")
            )
            continue
        low_ok = bar.min is None or value >= bar.min
        high_ok = bar.max is None or value <= bar.max
        bounds = " and ".join(
            part
            for part in (bar.min is not None and f">= {bar.min:g}", bar.max is not None and f"<= {bar.max:g}")
            if part
        )
        results.append(
            CheckResult(
                name=f"threshold:{bar.metric}",
                passed=low_ok and high_ok,
                message=f"{bar.metric} {_shown(value, (bar.min, bar.max))} "
                f"{'meets' if low_ok and high_ok else 'misses'} {bounds}",
            )
        )
    primary = policy.primary_metric if policy else None
    if champion is not None and primary and primary in spec.metrics and primary in champion.spec.metrics:
        ours, theirs = spec.metrics[primary], champion.spec.metrics[primary]
        allowed = policy.allowed_regression if policy else 0.0
        lower_better = primary in LOWER_IS_BETTER
        regression = ours - theirs if lower_better else theirs - ours
        passed = regression <= allowed or math.isclose(regression, allowed, abs_tol=1e-9)
        results.append(
            CheckResult(
                name=f"champion:{primary}",
                passed=passed,
                message=f"{primary} {ours:.4g} vs champion {champion.metadata.name} {theirs:.4g} "
                f"(allowed regression {allowed:g})",
            )
        )
    return results


def signature_check(version: ModelVersion, policy: Policy) -> CheckResult:
    """Whether a trusted key signed the version's record (the operator's check of what the build signed)."""
    passed, message = trust.verdict(version, policy)
    return CheckResult(name="signature", passed=passed, message=message)


def _shown(value: float, bounds: tuple[float | None, ...]) -> str:
    """The value as a person reads it: 4 significant digits, more when those would equal a bound it misses."""
    short = f"{value:.4g}"
    return repr(value) if any(b is not None and float(short) == b != value for b in bounds) else short


@dataclass(frozen=True)
class StageDecision:
    stage: str
    reason: str
    message: str


def stage(version: ModelVersion, results: list[CheckResult], current: str | None) -> StageDecision:
    """Candidate → Validated → Approved | Rejected; an Archived version stays Archived."""
    if current == "Archived":
        return StageDecision("Archived", "Superseded", "a newer version of the model was approved")
    failed = [r for r in results if not r.passed]
    if failed:
        return StageDecision("Rejected", "ValidationFailed", "; ".join(r.message for r in failed))
    approval = version.spec.approval
    if approval and approval.state == "Rejected":
        why = approval.reason or "no reason given"
        return StageDecision("Rejected", "RejectedByApprover", f"rejected by {approval.by}: {why}")
    if approval and approval.state == "Approved":
        why = f": {approval.reason}" if approval.reason else ""
        return StageDecision("Approved", "ApprovedByApprover", f"approved by {approval.by}{why}")
    if version.spec.validation and version.spec.validation.auto_approve:
        return StageDecision(
            "Approved", "AutoApproved", "validated, and the build's policy approves validated versions"
        )
    passed = ", ".join(r.message for r in results) or "no thresholds were set"
    return StageDecision("Validated", "AwaitingApproval", f"validated ({passed}); waiting for spec.approval")


@dataclass(frozen=True)
class Judged:
    """A version's new status, and what people hear of it."""

    status: ModelVersionStatus
    events: list[Event]


def judged(
    version: ModelVersion,
    champion: ModelVersion | None,
    served_by: list[ServingRef],
    when: dt.datetime,
    policy: Policy = NO_POLICY,
) -> Judged:
    """Checks (once: a record is judged against the champion of its day), the stage they and the approval give,
    the conditions, who serves it, and the transition told when the stage changes."""
    status = version.status or ModelVersionStatus()
    current = status.stage
    if status.checks is not None:
        results, against = status.checks, status.champion
    else:
        results, against = checks(version, champion, policy), champion.metadata.name if champion else None
    decision = stage(version, results, current)
    generation = version.metadata.generation
    conditions = kstatus(status.conditions, "Ready", decision.reason, decision.message, generation)
    passed = all(r.passed for r in results)
    conditions = set_condition(conditions, "Validated", passed, decision.reason, decision.message, generation)
    changes: dict[str, Any] = {
        "observed_generation": generation,
        "stage": decision.stage,
        "checks": results,
        "conditions": conditions,
        "served_by": served_by or None,
        "champion": against or status.champion,
    }
    events: list[Event] = []
    if decision.stage != current:
        changes["stage_time"] = when
        if decision.stage == "Approved":
            approval = version.spec.approval
            changes["approved_by"] = (approval.by if approval and approval.state == "Approved" else None) or "policy"
            changes["approved_at"] = when
        change = f"{current or 'Candidate'} → {decision.stage}: {decision.message}"
        events.append(("Warning" if decision.stage == "Rejected" else "Normal", decision.stage, change))
    return Judged(status.updated(**changes), events)


def served(deployment: ModelDeploymentStatus | None) -> list[tuple[str, Track]]:
    """(version, track) for what a ModelDeployment's status says it serves: its stable version, and its canary
    while one runs (a rolled-back canary serves nothing)."""
    out: list[tuple[str, Track]] = []
    if deployment and deployment.serving_version:
        out.append((deployment.serving_version, "stable"))
    rollout = deployment.rollout if deployment else None
    if rollout and rollout.serving_canary():
        out.append((rollout.canary_version or "", "canary"))
    return out


def serving_refs(refs: list[ServingRef]) -> list[ServingRef]:
    """`status.servedBy`: in a stable order, each deployment and track once, the first MAX_SERVED_BY of them."""
    unique = sorted({(r.deployment, r.track) for r in refs})[:MAX_SERVED_BY]
    return [ServingRef(deployment=d, track=t) for d, t in unique]


def shown_as_before(shown: list[ServingRef], changed: set[tuple[str, str]]) -> bool:
    """Whether `servedBy`, full (it shows the first MAX_SERVED_BY), stays as it is when the (deployment, track)s in
    `changed` start or stop serving: each sorts after the last one shown. At 10,000 deployments of one version, all
    but the first few skip reading the whole list of its servers."""
    if len(shown) < MAX_SERVED_BY:
        return False
    last = (shown[-1].deployment, shown[-1].track)
    return all(ref > last for ref in changed)


def superseded_by(version: ModelVersion, others: list[ModelVersion]) -> ModelVersion | None:
    """The newest Approved version above an Approved one, if there is one: it supersedes it."""
    if not version.status or version.status.stage != "Approved":
        return None
    newer = [v for v in others if v.status and v.status.stage == "Approved" and v.spec.version > version.spec.version]
    return max(newer, key=lambda v: v.spec.version, default=None)
