"""A ModelDeployment's rollout as a state machine of pure functions: which version serves stable traffic, which one
is the canary, `status.rollout`, `status.history`, and what to tell people (Events, decision metrics).

`plan` runs on every reconcile, before anything is measured: it serves a first version, replaces the stable one
(rolling), starts a canary or drops one whose version is no longer the target. `decide` acts on the canary's verdict.
The controller does the I/O around them: it lists versions, measures the canary, applies the children.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.common import Track
from modelops.api.v1alpha1.modeldeployment import Decision, HistoryEntry, Measurement, RolloutStatus

from .events import Event
from .modeldeployment import Verdict

EndReason = Literal["Replaced", "Promoted", "RolledBack"]


@dataclass(frozen=True)
class Rollout:
    stable: ModelVersion | None
    canary: ModelVersion | None
    status: RolloutStatus
    history: list[HistoryEntry]
    events: list[Event] = field(default_factory=list)
    #: Decision actions newly recorded in status.rollout.lastDecision (each counted once in the operator's metrics).
    decisions: list[str] = field(default_factory=list)
    #: (reason, message) when nothing may be applied: the children are left exactly as they are.
    blocked: tuple[str, str] | None = None

    def said(self, event: Event, **changes: Any) -> Rollout:
        return dataclasses.replace(self, events=[*self.events, event], **changes)


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
    if target is None or (stable is not None and target.metadata.name == stable.metadata.name):
        pass
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
    elif phase == "RolledBack" and canary_version == target.metadata.name:
        pass  # a rolled-back version is not retried; a newer approval is
    elif phase == "Progressing" and canary_version == target.metadata.name:
        state = dataclasses.replace(state, canary=target)
    else:
        history = state.history
        if phase == "Progressing" and canary_version:
            history = history_end(history, canary_version, "canary", "Replaced", when)
        decision = f"canary {target.metadata.name} started beside {stable.metadata.name}"
        started = RolloutStatus(
            phase="Progressing",
            canary_version=target.metadata.name,
            step=0,
            step_started=when,
            last_decision=Decision(action="Start", reason=decision, time=when),
        )
        state = state.said(
            ("Normal", "CanaryStarted", decision),
            canary=target,
            status=started,
            history=history_start(history, target.metadata.name, "canary", when),
            decisions=["Start"],
        )
    if state.canary is None and state.status.phase == "Progressing":  # the target moved away from the canary
        replaced = history_end(state.history, state.status.canary_version or "", "canary", "Replaced", when)
        state = dataclasses.replace(state, status=RolloutStatus(phase="Stable"), history=replaced)
    return state


def decide(state: Rollout, verdict: Verdict, measurement: Measurement, when: dt.datetime) -> Rollout:
    """Act on the canary's verdict: wait, advance a step, promote it, or roll it back."""
    stable, canary = state.stable, state.canary
    assert stable is not None and canary is not None, "only a running canary is judged"
    status = state.status.model_copy(update={"measurement": measurement})
    decisions = list(state.decisions)
    if verdict.action != "Wait" or (status.last_decision.reason if status.last_decision else None) != verdict.reason:
        status.last_decision = Decision(action=verdict.action, reason=verdict.reason, time=when)
        decisions.append(verdict.action)
    state = dataclasses.replace(state, status=status, decisions=decisions)
    name = canary.metadata.name
    if verdict.action == "Advance":
        advanced = status.model_copy(update={"step": (status.step or 0) + 1, "step_started": when})
        return state.said(
            ("Normal", "CanaryAdvanced", f"{name}: {verdict.reason}; step {(advanced.step or 0) + 1}"),
            status=advanced,
        )
    if verdict.action == "Promote":
        history = history_end(state.history, name, "canary", "Promoted", when)
        history = history_end(history, stable.metadata.name, "stable", "Replaced", when)
        return state.said(
            ("Normal", "CanaryPromoted", f"{name} promoted: {verdict.reason}"),
            stable=canary,
            canary=None,
            status=RolloutStatus(phase="Stable", last_decision=status.last_decision),
            history=history_start(history, name, "stable", when),
        )
    if verdict.action == "RollBack":
        return state.said(
            ("Warning", "CanaryRolledBack", f"{name} rolled back: {verdict.reason}"),
            canary=None,
            status=status.model_copy(update={"phase": "RolledBack"}),
            history=history_end(state.history, name, "canary", "RolledBack", when),
        )
    return state


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
