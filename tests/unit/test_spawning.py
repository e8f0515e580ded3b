"""Timers and daemons put no finalizer on what they serve, stop at their object's DELETED event, and a deleted
monitor's series go with it. The integration side (a namespace deleted while no operator runs) is in
tests/integration/test_leaving.py."""

from __future__ import annotations

import asyncio

import kopf
import prometheus_client
import pytest

from modelops.controllers import (
    main,  # noqa: F401  (importing registers every handler)
    metrics,
    spawning,
)
from modelops.controllers.modelbuild import _trainer_waits
from modelops.controllers.modeldeployment import _progressing, _rolling_out


def test_no_timer_or_daemon_asks_for_a_finalizer_once_released() -> None:
    registry = kopf.get_default_registry()
    handlers = registry._spawning.get_all_handlers()
    kinds = {type(h).__name__ for h in handlers}
    assert kinds == {"TimerHandler", "DaemonHandler"}, kinds
    assert all(h.requires_finalizer for h in handlers), "Kopf's own decorators ask for one"

    spawning.without_finalizers(registry)

    after = registry._spawning.get_all_handlers()
    assert [h.id for h in after] == [h.id for h in handlers]
    assert not any(h.requires_finalizer for h in after)


@pytest.mark.parametrize("when", [None, _progressing])
def test_a_deleted_objects_timers_and_daemons_are_filtered_out(when: kopf.WhenFilterFn | None) -> None:
    memo = kopf.Memo()
    status = {"rollout": {"phase": "Progressing"}}
    matches = spawning.while_alive(when)
    assert matches(memo=memo, status=status)

    asyncio.run(spawning.deleted(type="MODIFIED", memo=memo))
    assert matches(memo=memo, status=status)
    asyncio.run(spawning.deleted(type="DELETED", memo=memo))
    assert not matches(memo=memo, status=status)


def test_the_own_condition_still_counts() -> None:
    matches = spawning.while_alive(_trainer_waits)
    assert matches(memo=kopf.Memo(), status={"phase": "Running"})
    assert not matches(memo=kopf.Memo(), status={"phase": "Succeeded"})


def test_a_deleted_monitors_alerts_leave_the_operators_metrics() -> None:
    def active(monitor: str) -> float | None:
        labels = {"namespace": "team-a", "monitor": monitor, "alert": "DriftDetected"}
        return prometheus_client.REGISTRY.get_sample_value("modelops_monitor_alert_active", labels)

    metrics.ALERT_ACTIVE.labels("team-a", "fraud", "DriftDetected").set(1)
    metrics.ALERT_ACTIVE.labels("team-a", "churn", "DriftDetected").set(1)
    metrics.DRIFT_SCORE.labels("team-a", "fraud", "amount", "psi").set(0.4)

    metrics.monitor_gone("team-a", "fraud")

    assert active("fraud") is None
    assert active("churn") == 1
    assert (
        prometheus_client.REGISTRY.get_sample_value(
            "modelops_monitor_drift_score",
            {"namespace": "team-a", "monitor": "fraud", "feature": "amount", "method": "psi"},
        )
        is None
    )


def reconciling(replicas: int | None, reason: str = "Scaling") -> dict[str, object]:
    return {"replicas": replicas, "conditions": [{"type": "Reconciling", "status": "True", "reason": reason}]}


def test_a_deployments_pods_are_looked_at_only_once_one_exists_or_while_one_fails() -> None:
    """A burst of new deployments lists no pods the Deployment controller has not created yet (at 1,000, 1.4 more
    lists per deployment when the ticks were not starved by the reconciles' backlog)."""
    looks = spawning.while_alive(_rolling_out)
    assert not looks(memo=kopf.Memo(), status=reconciling(None))
    assert not looks(memo=kopf.Memo(), status=reconciling(0))
    assert looks(memo=kopf.Memo(), status=reconciling(1))
    failing = {"replicas": 0, "conditions": [{"type": "Stalled", "status": "True", "reason": "ServerFailing"}]}
    assert looks(memo=kopf.Memo(), status=failing), "a failure said is looked at again, to be cleared"
    progressing = {**reconciling(1), "rollout": {"phase": "Progressing"}}
    assert not looks(memo=kopf.Memo(), status=progressing), "the canary's own timer looks"
