"""An asyncio event loop on virtual time, for unit tests that must not sleep for real.

``loop.time()`` is virtual: when nothing is ready to run, the loop jumps straight to its
next timer instead of waiting, so ``asyncio.sleep(0.2)`` and ``wait_for(..., 30)`` cost no
wall time, and the order of events is the one real time would give. While work handed to
an executor is in flight (``run_in_executor``: the controller's GCS writes, for one),
virtual time moves with real time and never jumps, so a thread's result is never
overtaken by a jump. Pair it with ``serve_core.control.clock.LoopClock`` so that the
controller's own readings of the time are virtual too.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
START = 1000.0  # not 0: code that treats 0.0 as "never" sees a clock well past it


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        if loop.in_executor:  # a thread is working: time passes as it really does, up to the next timer
            wait = 0.005 if timeout is None else min(timeout, 0.005)
            started = time.monotonic()
            events = super().select(wait)
            loop.now += min(time.monotonic() - started, wait)
            return events
        events = super().select(0)
        if not events and timeout is not None and timeout > 0:
            loop.now += timeout  # idle until the next timer: jump to it
        elif not events and timeout is None:
            return super().select(None)  # nothing scheduled: only another thread can wake us
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = START
        self.in_executor = 0

    def time(self) -> float:
        return self.now

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        self.in_executor += 1
        fut = super().run_in_executor(executor, func, *args)

        def done(_: Any) -> None:
            self.in_executor -= 1

        fut.add_done_callback(done)
        return fut


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a VirtualTimeLoop."""
    loop = VirtualTimeLoop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
