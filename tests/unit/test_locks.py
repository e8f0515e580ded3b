"""The per-object reconcile lock: one per object while in use, none left behind after."""

from __future__ import annotations

import gc

from modelops.controllers import locks


def test_an_objects_lock_is_shared_while_held_and_forgotten_after() -> None:
    held = locks.object_lock("ModelDeployment", "team-a", "churn")
    assert locks.object_lock("ModelDeployment", "team-a", "churn") is held
    assert locks.object_lock("ModelDeployment", "team-b", "churn") is not held
    del held
    gc.collect()
    assert ("ModelDeployment", "team-a", "churn") not in locks._locks
