"""An asynchronous handler's API work runs on the handler threads, in the handler's context (Kopf's `kopf.event`
finds its queue there), as Kopf runs a synchronous handler."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from modelops.controllers.settings import blocking

QUEUE: contextvars.ContextVar[str] = contextvars.ContextVar("queue")


def test_blocking_work_runs_on_a_handler_thread_in_the_handlers_context() -> None:
    def work(suffix: str) -> tuple[str, str]:
        return QUEUE.get() + suffix, threading.current_thread().name

    async def handler() -> tuple[str, str]:
        QUEUE.set("the object's event queue")
        return await blocking(work, "!")

    told, thread = asyncio.run(handler())
    assert told == "the object's event queue!"
    assert thread.startswith("handler") and thread != threading.main_thread().name
