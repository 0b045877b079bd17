"""The time the control plane reads. Injected, so that unit tests run the controller on a
virtual clock (tests/unit/virtual_time.py) and never sleep for real.

The controller sleeps with ``asyncio.sleep`` and bounds calls with ``asyncio.wait_for``:
both follow the event loop's clock, which a test loop makes virtual too. A ``Clock`` gives
the readings that are not the loop's business: the monotonic time decisions are made on
(autoscaling delays, demand freshness, health and drain deadlines) and wall time for
records people read (``last_deployed_time_s``).
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Real time. ``monotonic`` is the clock asyncio's default loop runs on."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class LoopClock(Clock):
    """The running event loop's time, and wall time that moves with it: a virtual-time loop
    makes every reading virtual (tests)."""

    def __init__(self, epoch: float = 1.7e9) -> None:
        self.epoch = epoch

    def monotonic(self) -> float:
        return asyncio.get_event_loop().time()

    def time(self) -> float:
        return self.epoch + self.monotonic()
