"""The queue of work that watch events ask for: each key once while it waits, one work per key at a time, a failed
work tried again."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from modelops.controllers import workqueue
from modelops.controllers.workqueue import WorkQueue


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


class Recorder:
    """Work that records each call, held until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, list[int]]] = []
        self.running: dict[Any, int] = {}
        self.most_at_once: dict[Any, int] = {}
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, key: Any, want: list[int]) -> None:
        with self.lock:
            self.running[key] = self.running.get(key, 0) + 1
            self.most_at_once[key] = max(self.most_at_once.get(key, 0), self.running[key])
        self.release.wait(5)
        with self.lock:
            self.running[key] -= 1
            self.calls.append((key, want))


def test_a_key_asked_for_many_times_while_it_waits_is_worked_on_once_with_every_want() -> None:
    work = Recorder()

    async def scenario(queue: WorkQueue[str, list[int]]) -> None:
        queue.add("blocker", [0])
        await until(lambda: work.running == {"blocker": 1})
        for i in range(1, 4):
            queue.add("md", [i])
        assert queue.waiting() == 1
        work.release.set()
        await until(lambda: len(work.calls) == 2)

    with ThreadPoolExecutor(1) as threads:
        asyncio.run(scenario(WorkQueue(work, lambda a, b: a + b, threads)))
    assert work.calls == [("blocker", [0]), ("md", [1, 2, 3])]


def test_a_key_asked_for_while_it_is_worked_on_is_worked_on_again_after_not_meanwhile() -> None:
    work = Recorder()

    async def scenario(queue: WorkQueue[str, list[int]]) -> None:
        assert not queue.busy("md")
        queue.add("md", [1])
        await until(lambda: work.running == {"md": 1})
        assert queue.busy("md"), "running"
        queue.add("md", [2])
        await asyncio.sleep(0.1)  # three threads are free: a second work of the key would start now
        assert work.running == {"md": 1}
        work.release.set()
        await until(lambda: len(work.calls) == 2)
        await until(lambda: not queue.busy("md"))

    with ThreadPoolExecutor(4) as threads:
        asyncio.run(scenario(WorkQueue(work, lambda a, b: a + b, threads)))
    assert work.calls == [("md", [1]), ("md", [2])]
    assert work.most_at_once == {"md": 1}


def test_different_keys_are_worked_on_at_once() -> None:
    work = Recorder()

    async def scenario(queue: WorkQueue[str, list[int]]) -> None:
        for key in "abc":
            queue.add(key, [1])
        await until(lambda: sum(work.running.values()) == 3)
        work.release.set()
        await until(lambda: len(work.calls) == 3)

    with ThreadPoolExecutor(4) as threads:
        asyncio.run(scenario(WorkQueue(work, lambda a, b: a + b, threads)))
    assert sorted(key for key, _ in work.calls) == ["a", "b", "c"]


def test_a_failed_work_is_told_and_tried_again_after_a_backoff(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workqueue, "MAX_BACKOFF", 0.2)
    tried: list[tuple[int, float]] = []

    def work(key: str, want: int) -> None:
        tried.append((want, time.monotonic()))
        if len(tried) < 3:
            raise RuntimeError("the API server is away")

    async def scenario(queue: WorkQueue[str, int]) -> None:
        queue.add("md", 7)
        await until(lambda: len(tried) == 3)
        await asyncio.sleep(0.5)

    with ThreadPoolExecutor(1) as threads:
        asyncio.run(scenario(WorkQueue(work, max, threads)))
    assert [want for want, _ in tried] == [7, 7, 7], "tried until it succeeds, then no more"
    assert tried[2][1] - tried[1][1] >= 0.2, "after a backoff"
    assert "work for md failed (2 in a row); trying again" in caplog.text
    assert "the API server is away" in caplog.text


def test_the_work_runs_in_the_context_of_the_first_call_not_each_callers() -> None:
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    seen: list[str] = []

    async def ask(queue: WorkQueue[str, Any], caller: str) -> None:
        who.set(caller)
        queue.add(caller, None)

    async def scenario(queue: WorkQueue[str, Any]) -> None:
        await asyncio.create_task(ask(queue, "kopf's handler"))
        await until(lambda: len(seen) == 1)
        await asyncio.create_task(ask(queue, "another object's handler"))
        await until(lambda: len(seen) == 2)

    with ThreadPoolExecutor(1) as threads:
        asyncio.run(scenario(WorkQueue(lambda key, want: seen.append(who.get()), lambda a, b: a, threads)))
    assert seen == ["kopf's handler", "kopf's handler"]


def test_each_tenant_takes_its_turn_and_other_work_on_the_threads_waits_behind_few() -> None:
    """Mallory's burst of ten keys does not make alice's one, nor a monitor's check on the same threads, wait
    behind all ten (first in, first out, both would run last)."""
    work = Recorder()
    ran: list[str] = []

    async def scenario(queue: WorkQueue[tuple[str, str], list[int]], threads: ThreadPoolExecutor) -> None:
        for i in range(10):
            queue.add(("mallory", f"md-{i}"), [i])
        await until(lambda: work.running == {("mallory", "md-0"): 1})
        queue.add(("alice", "md"), [0])
        threads.submit(ran.append, "a monitor's check")
        work.release.set()
        await until(lambda: len(work.calls) == 11)

    def record(key: tuple[str, str], want: list[int]) -> None:
        work(key, want)
        ran.append(key[0])

    with ThreadPoolExecutor(1) as threads:
        queue = WorkQueue(record, lambda a, b: a + b, threads, tenant=workqueue.namespace, concurrency=1)
        asyncio.run(scenario(queue, threads))
    assert ran[:4] == ["mallory", "a monitor's check", "mallory", "alice"]
    assert sorted(key for key, _ in work.calls) == [("alice", "md")] + [("mallory", f"md-{i}") for i in range(10)]
    assert ran.count("mallory") == 10, "none lost, none twice"
