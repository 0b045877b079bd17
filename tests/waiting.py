"""Wait for a condition instead of sleeping a fixed time: a fixed sleep is too long on a quiet
machine and too short on a busy one. Shared by the integration and e2e tiers."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1,
             ignore: tuple[type[BaseException], ...] = (), detail: Callable[[], Any] | None = None) -> Any:
    """Poll ``condition`` until it returns something truthy and return that. After ``timeout_s``
    raise AssertionError naming ``what`` was waited for, with the last value (or the last error
    of a type in ``ignore``, which count as "not yet") and, if given, ``detail()``: the state
    that explains the failure."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = condition()
            if last:
                return last
        except ignore as e:
            last = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    message = f"{what}: not within {timeout_s} s (last: {last!r})"
    if detail is not None:
        message += f"; {detail()}"
    raise AssertionError(message)


async def wait_for_async(condition: Callable[[], Awaitable[Any]], timeout_s: float, what: str,
                         interval_s: float = 0.02) -> Any:
    """``wait_for`` inside an event loop: awaits ``condition()`` and sleeps without blocking the loop."""
    deadline = time.monotonic() + timeout_s
    while True:
        last = await condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s (last: {last!r})")
        await asyncio.sleep(interval_s)
