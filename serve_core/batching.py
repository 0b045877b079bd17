"""``@serve.batch``: callers pass one item, the method receives a list.

Each instance (or function) gets one queue per decorated method. A flusher takes
up to ``max_batch_size`` items, waiting at most ``batch_wait_timeout_s`` after the
first, calls the method once, and hands each caller its own result.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any

from serve_core.errors import ConfigError


class _BatchQueue:
    def __init__(self, fn: Callable[..., Any], name: str, max_batch_size: int, timeout_s: float) -> None:
        self.fn = fn
        self.name = name
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.items: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def submit(self, item: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.items.put((item, fut))
        return await fut

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.items.get()]
            deadline = loop.time() + self.timeout_s
            while len(batch) < self.max_batch_size:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.items.get(), left))
                except TimeoutError:
                    break
            batch = [(i, f) for i, f in batch if not f.cancelled()]
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            results = await self.fn([i for i, _ in batch])
            if not isinstance(results, (list, tuple)) or len(results) != len(batch):
                raise TypeError(
                    f"batched method {self.name} must return a list with one result per "
                    f"input; got {type(results).__name__} for {len(batch)} inputs"
                )
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
        except Exception as e:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)


def batch(
    _fn: Callable[..., Any] | None = None, *, max_batch_size: int = 10, batch_wait_timeout_s: float = 0.01
) -> Any:
    if not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ConfigError("max_batch_size", max_batch_size, "must be an integer >= 1")
    if not isinstance(batch_wait_timeout_s, (int, float)) or batch_wait_timeout_s < 0:
        raise ConfigError("batch_wait_timeout_s", batch_wait_timeout_s, "must be a number >= 0")

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigError("@serve.batch", fn.__qualname__, "the batched method must be `async def`")
        attr = f"__serve_core_batch_{fn.__name__}"
        queues: dict[int, _BatchQueue] = {}

        def queue_for(owner: Any) -> _BatchQueue:
            if owner is None:
                key = id(asyncio.get_running_loop())
                if key not in queues:
                    queues[key] = _BatchQueue(fn, fn.__qualname__, max_batch_size, batch_wait_timeout_s)
                return queues[key]
            q = owner.__dict__.get(attr)
            if q is None:
                q = _BatchQueue(functools.partial(fn, owner), fn.__qualname__, max_batch_size, batch_wait_timeout_s)
                owner.__dict__[attr] = q
            return q

        @functools.wraps(fn)
        async def call(*args: Any) -> Any:
            if len(args) == 2:  # a method: (self, item)
                return await queue_for(args[0]).submit(args[1])
            if len(args) == 1:
                return await queue_for(None).submit(args[0])
            raise TypeError(f"{fn.__qualname__} is batched: call it with exactly one item")

        call._serve_core_batched = True  # type: ignore[attr-defined]
        return call

    return wrap(_fn) if _fn is not None else wrap
