"""The per-object reconcile lock: one per object while in use, none left behind after; a reconcile that only asks
for a look again is served by one already waiting."""

from __future__ import annotations

import gc
import threading

from modelops.controllers import locks

KEY = ("ModelDeployment", "team-a", "churn")


def test_an_objects_lock_is_shared_while_held_and_forgotten_after() -> None:
    held = locks.object_lock(*KEY)
    assert locks.object_lock(*KEY) is held
    assert locks.object_lock("ModelDeployment", "team-b", "churn") is not held
    del held
    gc.collect()
    assert KEY not in locks._turns


def test_a_shared_reconcile_is_served_by_one_already_waiting() -> None:
    ran: list[str] = []
    release, waiting = threading.Event(), threading.Event()

    def first() -> None:
        with locks.turn(*KEY, shared=True) as mine:
            assert mine
            waiting.wait(5)
            release.wait(5)
            ran.append("first")

    def second(label: str, shared: bool) -> None:
        with locks.turn(*KEY, shared=shared) as mine:
            if mine:
                ran.append(label)

    holder = threading.Thread(target=first)
    holder.start()
    while not locks.object_lock(*KEY).lock.locked():
        pass
    waiter = threading.Thread(target=second, args=("waiter", True))
    waiter.start()
    while locks._turns[KEY].waiting == 0:
        pass
    waiting.set()
    second("coalesced", True)  # returns at once: the waiter will look
    timed = threading.Thread(target=second, args=("canary tick", False))  # one with work of its own always runs
    timed.start()
    while locks._turns[KEY].waiting < 2:
        pass
    release.set()
    for thread in (holder, waiter, timed):
        thread.join(5)
    assert sorted(ran) == ["canary tick", "first", "waiter"]
    gc.collect()
    assert KEY not in locks._turns  # nobody left waiting or holding
