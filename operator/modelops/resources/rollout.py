"""A ModelDeployment's rollout as a state machine of pure functions: which version serves stable traffic, which one
is the canary, `status.rollout`, `status.history`, and what to tell people (Events, decision metrics).

`plan` runs on every reconcile, before anything is measured: it serves a first version, replaces the stable one
(rolling), starts a canary or drops one whose version is no longer the target. `decide` acts on the canary's verdict.
The controller does the I/O around them: it lists versions, measures the canary, applies the children.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion

from .modeldeployment import Verdict

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class Rollout:
    stable: ModelVersion | None
    canary: ModelVersion | None
    status: dict[str, Any]  # status.rollout
    history: list[dict[str, Any]]
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
    status: dict[str, Any],
    history: list[dict[str, Any]],
    when: str,
) -> Rollout:
    """Where the rollout stands, given the version serving now (`stable`) and the one that should (`target`)."""
    state = Rollout(stable, None, dict(status or {"phase": "Stable"}), list(history))
    phase, canary_version = state.status.get("phase"), state.status.get("canaryVersion")
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
        started = {
            "phase": "Progressing",
            "canaryVersion": target.metadata.name,
            "step": 0,
            "stepStarted": when,
            "lastDecision": {"action": "Start", "reason": decision, "time": when},
        }
        state = state.said(
            ("Normal", "CanaryStarted", decision),
            canary=target,
            status=started,
            history=history_start(history, target.metadata.name, "canary", when),
            decisions=["Start"],
        )
    if state.canary is None and state.status.get("phase") == "Progressing":  # the target moved away from the canary
        replaced = history_end(state.history, state.status["canaryVersion"], "canary", "Replaced", when)
        state = dataclasses.replace(state, status={"phase": "Stable"}, history=replaced)
    return state


def decide(state: Rollout, verdict: Verdict, measurement: dict[str, Any], when: str) -> Rollout:
    """Act on the canary's verdict: wait, advance a step, promote it, or roll it back."""
    assert state.stable is not None and state.canary is not None, "only a running canary is judged"
    status = {**state.status, "measurement": measurement}
    decisions = list(state.decisions)
    if verdict.action != "Wait" or (status.get("lastDecision") or {}).get("reason") != verdict.reason:
        status["lastDecision"] = {"action": verdict.action, "reason": verdict.reason, "time": when}
        decisions.append(verdict.action)
    state = dataclasses.replace(state, status=status, decisions=decisions)
    name = state.canary.metadata.name
    if verdict.action == "Advance":
        advanced = {**status, "step": status["step"] + 1, "stepStarted": when}
        return state.said(
            ("Normal", "CanaryAdvanced", f"{name}: {verdict.reason}; step {advanced['step'] + 1}"), status=advanced
        )
    if verdict.action == "Promote":
        history = history_end(state.history, name, "canary", "Promoted", when)
        history = history_end(history, state.stable.metadata.name, "stable", "Replaced", when)
        return state.said(
            ("Normal", "CanaryPromoted", f"{name} promoted: {verdict.reason}"),
            stable=state.canary,
            canary=None,
            status={"phase": "Stable", "lastDecision": status["lastDecision"]},
            history=history_start(history, name, "stable", when),
        )
    if verdict.action == "RollBack":
        return state.said(
            ("Warning", "CanaryRolledBack", f"{name} rolled back: {verdict.reason}"),
            canary=None,
            status={**status, "phase": "RolledBack"},
            history=history_end(state.history, name, "canary", "RolledBack", when),
        )
    return state


def serving_now(history: list[dict[str, Any]]) -> str | None:
    """The version whose stable entry is still open: the one the stable pods serve."""
    return next(
        (h["version"] for h in reversed(history) if h.get("track", "stable") == "stable" and not h.get("ended")), None
    )


def history_start(history: list[dict[str, Any]], version: str, track: str, when: str) -> list[dict[str, Any]]:
    return [*history, {"version": version, "track": track, "started": when}][-100:]


def history_end(
    history: list[dict[str, Any]], version: str, track: str, reason: str, when: str
) -> list[dict[str, Any]]:
    """Close the open entry of this version and track."""
    out = [dict(h) for h in history]
    for entry in reversed(out):
        if entry["version"] == version and entry.get("track", "stable") == track and not entry.get("ended"):
            entry["ended"], entry["endReason"] = when, reason
            break
    return out
