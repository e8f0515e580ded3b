"""Work that watch events ask for, queued by object, as controller-runtime's work queue: the event's handler returns
at once, and an object waits in the queue once, however many events asked for it meanwhile.

Until this, each such event awaited a handler thread inside its Kopf handler, and Kopf kept all it had built for the
event meanwhile (the body, its causes, loggers, patch and handler states). In a burst of 1,000 new deployments 1,300
events waited so at once, about 45 KB each: most of the operator's growth. Queued, an object costs its key and what
its work is to be told.

A work that fails is tried again after a backoff (1 s, doubling up to a minute), as Kopf retries a failed handler.

The queue hands the threads a few works at a time, taken in turn from each tenant (a key's namespace): else one
tenant's burst of a thousand new objects would be handed over at once, and another tenant's one object, and every
other handler that runs on the same threads (a monitor's check), would wait behind all of them, first in, first out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Generic, TypeVar

from .settings import WORKERS

K = TypeVar("K", bound=Hashable)
W = TypeVar("W")

log = logging.getLogger(__name__)

#: The longest wait before a failed work is tried again.
MAX_BACKOFF = 60.0


def everyone(key: Hashable) -> None:
    """One tenant for every key: first in, first out."""
    return None


def namespace(key: tuple[str, str]) -> str:
    """The tenant of an object keyed by namespace and name."""
    return key[0]


class WorkQueue(Generic[K, W]):
    """Keys waiting for `work(key, want)` on the `executor`'s threads: one work per key at a time, and a key that
    waits already is not queued twice (its one work is told both wants, combined by `merge`). At most `concurrency`
    works are with the executor at once, the next taken from each `tenant(key)` in turn."""

    def __init__(
        self,
        work: Callable[[K, W], None],
        merge: Callable[[W, W], W],
        executor: Executor,
        tenant: Callable[[K], Hashable] = everyone,
        concurrency: int = WORKERS,
    ) -> None:
        self._work, self._merge, self._executor = work, merge, executor
        self._tenant, self._concurrency = tenant, concurrency
        self._lock = threading.Lock()
        self._waiting: dict[K, W] = {}
        self._queued: set[K] = set()  # in line, with the executor, or running
        self._lines: dict[Hashable, collections.deque[K]] = {}  # each tenant's keys in line; first the next to go
        self._handed = 0  # works with the executor, or running
        self._failures: dict[K, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None

    def add(self, key: K, want: W) -> None:
        """Ask for `key`'s work, from the event loop. A key whose work runs now is done again after it: the event
        that asks may have come after the work read the object.

        Works run in a copy of the context of the first call: Kopf's, which `kopf.event` reads (its event queue, the
        same for every object). Not each caller's own: Kopf's context holds the whole event it handles."""
        with self._lock:
            if self._context is None:
                self._loop, self._context = asyncio.get_running_loop(), contextvars.copy_context()
            if key in self._waiting:
                self._waiting[key] = self._merge(self._waiting[key], want)
                return
            self._waiting[key] = want
            if key in self._queued:
                return
            self._queued.add(key)
            self._line_up(key)
            turns = self._turns()
        self._hand(turns)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def busy(self, key: K) -> bool:
        """Whether `key`'s work waits or runs: what it will have done is not known yet."""
        with self._lock:
            return key in self._queued

    def _line_up(self, key: K) -> None:
        self._lines.setdefault(self._tenant(key), collections.deque()).append(key)

    def _turns(self) -> list[K]:
        """The keys to hand over now, one from each tenant in turn, while fewer than `concurrency` are handed."""
        turns: list[K] = []
        while self._lines and self._handed < self._concurrency:
            tenant, line = next(iter(self._lines.items()))
            turns.append(line.popleft())
            del self._lines[tenant]
            if line:  # to the back of the round
                self._lines[tenant] = line
            self._handed += 1
        return turns

    def _hand(self, keys: list[K]) -> None:
        for key in keys:
            self._executor.submit(self._run, key)

    def _run(self, key: K) -> None:
        with self._lock:
            want, context, loop = self._waiting.pop(key), self._context, self._loop
        assert context is not None and loop is not None  # set by the first `add`
        try:
            context.copy().run(self._work, key, want)
            self._failures.pop(key, None)
        except Exception:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(MAX_BACKOFF, 2.0 ** (failures - 1))
            log.exception("work for %s failed (%d in a row); trying again in %.0f s", key, failures, delay)
            with contextlib.suppress(RuntimeError):  # the loop is closed: the operator stops
                loop.call_soon_threadsafe(loop.call_later, delay, self.add, key, want)
        finally:
            with self._lock:
                self._handed -= 1
                if key in self._waiting:  # asked for again while it ran: back in its tenant's line
                    self._line_up(key)
                else:
                    self._queued.discard(key)
                turns = self._turns()
            self._hand(turns)
