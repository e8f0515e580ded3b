"""A ModelDeployment's rollout as a state machine of pure functions: which version serves stable traffic, which one
is the canary, `status.rollout` with its decision record, `status.history`, and what to tell people (Events,
decision metrics).

`plan` runs on every reconcile, before anything is measured: it serves a first version, replaces the stable one
(rolling), starts a canary or drops one whose version is no longer the target. `answer` acts on an approver's
command, `decide` on a measured step's verdict, `waited` on a pause nobody answered. The controller does the I/O
around them: it lists versions, measures both tracks, applies the children.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.common import Track, duration_seconds
from modelops.api.v1alpha1.modeldeployment import (
    COMMAND_ANNOTATION,
    COMMAND_AT_ANNOTATION,
    COMMAND_BY_ANNOTATION,
    COMMAND_REASON_ANNOTATION,
    CanaryAnalysis,
    Decision,
    DecisionAction,
    HistoryEntry,
    RolloutAction,
    RolloutStatus,
)

from .analysis import StepJudgement
from .events import Event, EventType

EndReason = Literal["Replaced", "Promoted", "RolledBack"]
#: Decisions kept in status.rollout.decisions.
RECORD = 20


@dataclass(frozen=True)
class Rollout:
    stable: ModelVersion | None
    canary: ModelVersion | None
    status: RolloutStatus
    history: list[HistoryEntry]
    events: list[Event] = field(default_factory=list)
    #: Decision actions newly recorded in status.rollout.lastDecision (each counted once in the operator's metrics).
    actions: list[str] = field(default_factory=list)
    #: (reason, message) when nothing may be applied: the children are left exactly as they are.
    blocked: tuple[str, str] | None = None

    def said(self, event: Event, **changes: Any) -> Rollout:
        return dataclasses.replace(self, events=[*self.events, event], **changes)


@dataclass(frozen=True)
class Command:
    """An approver's answer to a rollout, as the annotations the rollout-commands policy guards carry it."""

    action: RolloutAction
    by: str
    reason: str
    #: When it was asked: what tells a command already acted on from a new one.
    at: dt.datetime


def requested(annotations: dict[str, str]) -> Command | str | None:
    """The command the annotations carry, None without one, or why it cannot be read."""
    asked = annotations.get(COMMAND_ANNOTATION)
    if asked is None:
        return None
    action = next((a for a in get_args(RolloutAction) if a == asked), None)
    if action is None:
        return f"{COMMAND_ANNOTATION}: {asked!r} is none of promote, abort, retry"
    by = annotations.get(COMMAND_BY_ANNOTATION, "")
    if not by:
        return f"{COMMAND_BY_ANNOTATION}: a command must name the approver who gives it"
    try:
        at = dt.datetime.fromisoformat(annotations.get(COMMAND_AT_ANNOTATION, ""))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        return f"{COMMAND_AT_ANNOTATION}: a command must say when it was asked, as an RFC 3339 time"
    return Command(action, by, annotations.get(COMMAND_REASON_ANNOTATION, ""), at)


def plan(
    md: ModelDeployment,
    stable: ModelVersion | None,
    target: ModelVersion | None,
    status: RolloutStatus | None,
    history: list[HistoryEntry],
    when: dt.datetime,
) -> Rollout:
    """Where the rollout stands, given the version serving now (`stable`) and the one that should (`target`)."""
    state = Rollout(stable, None, status or RolloutStatus(phase="Stable"), list(history))
    phase, canary_version = state.status.phase, state.status.canary_version
    serving = serving_now(history)
    if stable is None and serving is not None:
        return dataclasses.replace(
            state,
            blocked=(
                "ServingVersionMissing",
                f"{serving}, the version serving stable traffic, no longer exists; its pods are left serving as they "
                f"are, and nothing replaces them until the ModelVersion {serving} is recreated",
            ),
        )
    if target is None:
        pass
    elif stable is not None and target.metadata.name == stable.metadata.name:
        if phase == "RolledBack":  # the spec selects the stable version again (reverted in Git, or rejected)
            state = dataclasses.replace(state, status=_settled(state.status))
    elif stable is None and phase == "RolledBack" and canary_version == target.metadata.name:
        return dataclasses.replace(
            state,
            blocked=(
                "RolledBack",
                f"{target.metadata.name} was rolled back: it serves again only through a canary, beside a stable version",
            ),
        )
    elif stable is None:
        state = state.said(
            ("Normal", "Serving", f"serving {target.metadata.name}"),
            stable=target,
            history=history_start(state.history, target.metadata.name, "stable", when),
        )
    elif not md.spec.rollout or md.spec.rollout.strategy == "Rolling":
        replaced = history_end(state.history, stable.metadata.name, "stable", "Replaced", when)
        state = state.said(
            ("Normal", "RollingUpdate", f"{stable.metadata.name} → {target.metadata.name}"),
            stable=target,
            history=history_start(replaced, target.metadata.name, "stable", when),
        )
    elif state.status.serving_canary() == target.metadata.name:
        state = dataclasses.replace(state, canary=target)
    elif (phase == "RolledBack" and canary_version == target.metadata.name) or rolled_back(
        state.history, target.metadata.name
    ):
        # A rolled-back version is not retried on its own (an approver's `retry` or a newer approval is); when the
        # spec selects it again after a revert, the rollout says so instead of looking settled.
        if phase != "RolledBack":
            held = state.status.model_copy(update={"phase": "RolledBack", "canary_version": target.metadata.name})
            state = dataclasses.replace(state, status=held)
    else:
        state = start_canary(
            state, target, when, f"canary {target.metadata.name} started beside {stable.metadata.name}"
        )
    if state.canary is None and state.status.serving_canary():  # the target moved away from the canary
        replaced = history_end(state.history, state.status.canary_version or "", "canary", "Replaced", when)
        state = dataclasses.replace(state, status=_settled(state.status), history=replaced)
    return state


def start_canary(
    state: Rollout,
    target: ModelVersion,
    when: dt.datetime,
    reason: str,
    by: str | None = None,
    asked: dt.datetime | None = None,
) -> Rollout:
    """A canary of `target` at its first step, beside the stable version; a running one is replaced."""
    assert state.stable is not None, "a canary runs beside a stable version"
    history = state.history
    if state.status.serving_canary():
        history = history_end(history, state.status.canary_version or "", "canary", "Replaced", when)
    started = _settled(state.status).model_copy(
        update={"phase": "Progressing", "canary_version": target.metadata.name, "step": 0, "step_started": when}
    )
    state = dataclasses.replace(
        state, canary=target, status=started, history=history_start(history, target.metadata.name, "canary", when)
    )
    return _decided(
        state, Decision(action="Start", reason=reason, time=when, step=0, by=by, asked=asked), "CanaryStarted"
    )


def answer(state: Rollout, command: Command, target: ModelVersion | None, steps: int, when: dt.datetime) -> Rollout:
    """Act on an approver's command: `promote` passes the current step (the last one promotes), `abort` rolls the
    canary back, `retry` measures the step again, or starts a rolled-back version's canary again."""
    status, by = state.status, command.by
    if any(d.by == by and d.asked == command.at for d in status.decisions or []):
        return state  # already acted on (the annotations outlived a crash)
    reason = f"{command.action} by {by}" + (f": {command.reason}" if command.reason else "")
    retry_rolled_back = command.action == "retry" and state.canary is None and state.stable is not None
    if retry_rolled_back and target is not None and rolled_back(state.history, target.metadata.name):
        return start_canary(state, target, when, reason, by, command.at)
    if state.canary is None:
        return state.said(
            ("Warning", "RolloutCommandIgnored", f"{command.action} by {by} ignored: no canary is running or paused")
        )
    decision = Decision(action="Retry", reason=reason, time=when, step=status.step, by=by, asked=command.at)
    if command.action == "promote":
        return _passed(state, decision, steps, when)
    if command.action == "abort":
        return _rolled_back(state, decision.model_copy(update={"action": "RollBack"}), when)
    return _retried(state, decision, when, inconclusive=0)


def decide(
    state: Rollout, judgement: StepJudgement, analysis: CanaryAnalysis, steps: int, when: dt.datetime
) -> Rollout:
    """Act on a measured step: wait, advance, promote, roll back, measure again, or pause for an approver."""
    assert state.stable is not None and state.canary is not None, "only a running canary is judged"
    status = state.status.model_copy(update={"measurement": judgement.measurement})
    state = dataclasses.replace(state, status=status)
    gates = judgement.measurement.gates
    verdict = None if judgement.outcome == "Wait" else judgement.outcome
    decision = Decision(
        action="Wait", reason=judgement.reason, time=when, step=status.step, verdict=verdict, gates=gates
    )
    if judgement.outcome == "Wait":
        if (status.last_decision.reason if status.last_decision else None) == judgement.reason:
            return state
        status = status.model_copy(update={"last_decision": decision})
        return dataclasses.replace(state, status=status, actions=[*state.actions, "Wait"])
    if judgement.outcome == "Pass":
        return _passed(state, decision, steps, when)
    if judgement.outcome == "Fail":
        return _rolled_back(state, decision.model_copy(update={"action": "RollBack"}), when)
    inconclusive = status.inconclusive or 0
    if inconclusive < analysis.max_inconclusive:
        return _retried(state, decision.model_copy(update={"action": "Retry"}), when, inconclusive + 1)
    paused = status.model_copy(update={"phase": "Paused", "paused_since": when})
    decision = decision.model_copy(
        update={
            "action": "Pause",
            "reason": f"{judgement.reason}; waiting for an approver: modelops rollout promote|abort|retry "
            f"(rolled back after {analysis.inconclusive_timeout} without an answer)",
        }
    )
    return _decided(dataclasses.replace(state, status=paused), decision, "RolloutPaused", "Warning")


def waited(state: Rollout, analysis: CanaryAnalysis, when: dt.datetime) -> Rollout:
    """A paused rollout that nobody answered within `inconclusiveTimeout` is rolled back."""
    since = state.status.paused_since
    if since is None or (when - since).total_seconds() < duration_seconds(analysis.inconclusive_timeout):
        return state
    reason = f"no approver answered within inconclusiveTimeout {analysis.inconclusive_timeout}"
    return _rolled_back(state, Decision(action="RollBack", reason=reason, time=when, step=state.status.step), when)


def _passed(state: Rollout, decision: Decision, steps: int, when: dt.datetime) -> Rollout:
    """The current step passed: the next one starts, or after the last one the canary is promoted."""
    status, canary, stable = state.status, state.canary, state.stable
    assert canary is not None and stable is not None, "only a running canary passes a step"
    name = canary.metadata.name
    step = (status.step or 0) + 1
    if step < steps:
        advanced = _next_window(status, when).model_copy(update={"step": step})
        decision = decision.model_copy(update={"action": "Advance"})
        state = dataclasses.replace(state, status=advanced)
        return _decided(state, decision, "CanaryAdvanced", message=f"{name}: {decision.reason}; step {step + 1}")
    history = history_end(state.history, name, "canary", "Promoted", when)
    history = history_end(history, stable.metadata.name, "stable", "Replaced", when)
    promoted = dataclasses.replace(
        state,
        stable=canary,
        canary=None,
        status=_settled(status),
        history=history_start(history, name, "stable", when),
    )
    decision = decision.model_copy(update={"action": "Promote"})
    return _decided(promoted, decision, "CanaryPromoted", message=f"{name} promoted: {decision.reason}")


def _rolled_back(state: Rollout, decision: Decision, when: dt.datetime) -> Rollout:
    assert state.canary is not None, "only a running canary is rolled back"
    name = state.canary.metadata.name
    status = state.status.model_copy(update={"phase": "RolledBack", "paused_since": None})
    state = dataclasses.replace(
        state, canary=None, status=status, history=history_end(state.history, name, "canary", "RolledBack", when)
    )
    return _decided(state, decision, "CanaryRolledBack", "Warning", f"{name} rolled back: {decision.reason}")


def _retried(state: Rollout, decision: Decision, when: dt.datetime, inconclusive: int) -> Rollout:
    """The current step measured again from now: a new window."""
    status = _next_window(state.status, when).model_copy(update={"inconclusive": inconclusive or None})
    return _decided(dataclasses.replace(state, status=status), decision, "CanaryStepRetried")


def _next_window(status: RolloutStatus, when: dt.datetime) -> RolloutStatus:
    return status.model_copy(
        update={"phase": "Progressing", "step_started": when, "paused_since": None, "inconclusive": None}
    )


def _settled(status: RolloutStatus) -> RolloutStatus:
    """No rollout under way; the decision record stays."""
    return RolloutStatus(phase="Stable", last_decision=status.last_decision, decisions=status.decisions)


def _decided(
    state: Rollout, decision: Decision, reason: str, type_: EventType = "Normal", message: str | None = None
) -> Rollout:
    """Record a decision in status.rollout (last, and in the bounded record), count it, and tell it."""
    status = state.status.model_copy(
        update={"last_decision": decision, "decisions": [*(state.status.decisions or []), decision][-RECORD:]}
    )
    action: DecisionAction = decision.action
    canary = state.status.canary_version or ""
    event: Event = (type_, reason, message or f"{canary}: {decision.reason}")
    return state.said(event, status=status, actions=[*state.actions, action])


def rolled_back(history: list[HistoryEntry], version: str) -> bool:
    """Whether the version's last canary was rolled back (and no canary of it started since)."""
    last = next((h for h in reversed(history) if h.version == version and h.track == "canary"), None)
    return last is not None and last.end_reason == "RolledBack"


def serving_now(history: list[HistoryEntry]) -> str | None:
    """The version whose stable entry is still open: the one the stable pods serve."""
    return next((h.version for h in reversed(history) if h.track == "stable" and h.ended is None), None)


def history_start(history: list[HistoryEntry], version: str, track: Track, when: dt.datetime) -> list[HistoryEntry]:
    return [*history, HistoryEntry(version=version, track=track, started=when)][-100:]


def history_end(
    history: list[HistoryEntry], version: str, track: Track, reason: EndReason, when: dt.datetime
) -> list[HistoryEntry]:
    """Close the open entry of this version and track."""
    out = list(history)
    for i in reversed(range(len(out))):
        entry = out[i]
        if entry.version == version and entry.track == track and entry.ended is None:
            out[i] = entry.model_copy(update={"ended": when, "end_reason": reason})
            break
    return out
