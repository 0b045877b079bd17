"""``@serve.batch``: callers pass one item, the method receives a list.

Each instance (or function) gets one queue per decorated method. A flusher takes
up to ``max_batch_size`` items (or, with ``batch_size_fn``, as many as keep that
function's size of the batch within it), waiting at most ``batch_wait_timeout_s``
after the first, calls the method once, and hands each caller its own result. Up to
``max_concurrent_batches`` batches run at once.

A batched ``async def`` returns any sequence with one result per input (a list, a
tuple, a numpy array). A batched async generator yields such a sequence per step, and
each caller gets an async generator of its own items; a caller's stream ends at the
generator's end or where its item is ``StopIteration``/``StopAsyncIteration``.
Positional and keyword arguments after ``self`` each become a list, as in Ray Serve.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from serve_core.errors import ConfigError, ServeCoreError

_STREAM_END = (StopIteration, StopAsyncIteration)


class BatchSizeError(ServeCoreError, TypeError):
    """A batched method returned a different number of results than it got inputs."""


@dataclass
class _Settings:
    """The knobs of one decorated method, changeable at run time (shared by its queues)."""

    max_batch_size: int
    batch_wait_timeout_s: float
    max_concurrent_batches: int
    batch_size_fn: Callable[[list[Any]], int] | None


@dataclass
class _Item:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]


class _Next:
    """One streamed result and where the caller's next one will arrive."""

    __slots__ = ("value", "next")

    def __init__(self, value: Any, nxt: asyncio.Future[Any]) -> None:
        self.value, self.next = value, nxt


class _BatchQueue:
    def __init__(self, fn: Callable[..., Any], name: str, settings: _Settings, streaming: bool) -> None:
        self.fn = fn
        self.name = name
        self.settings = settings
        self.streaming = streaming
        self.items: asyncio.Queue[_Item] = asyncio.Queue()
        self.deferred: _Item | None = None  # did not fit the last batch: first in the next one
        self.slots = asyncio.Semaphore(settings.max_concurrent_batches)
        self.running: set[asyncio.Task[None]] = set()
        self.task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def submit(self, item: _Item) -> None:
        await self.items.put(item)

    def _size(self, batch: list[_Item]) -> int:
        fn = self.settings.batch_size_fn
        if fn is None:
            return len(batch)
        return int(fn([_first_arg(i) for i in batch]))

    async def _next_item(self) -> _Item:
        if self.deferred is not None:
            item, self.deferred = self.deferred, None
            return item
        return await self.items.get()

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next_item()
            limit = self.settings.max_batch_size
            if self.settings.batch_size_fn is not None and self._size([first]) > limit:
                if not first.future.done():
                    first.future.set_exception(RuntimeError(
                        f"one item of {self.name} has size {self._size([first])} by batch_size_fn, over "
                        f"max_batch_size={limit}; raise max_batch_size or check batch_size_fn"
                    ))
                continue
            batch = [first]
            deadline = loop.time() + self.settings.batch_wait_timeout_s
            while self._size(batch) < limit:
                left = deadline - loop.time()
                try:
                    item = self.items.get_nowait() if left <= 0 else await asyncio.wait_for(self.items.get(), left)
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(item)
                if self._size(batch) > limit:
                    self.deferred = batch.pop()
                    break
            batch = [i for i in batch if not i.future.cancelled()]
            if not batch:
                continue
            await self.slots.acquire()
            task = loop.create_task(self._run(batch))
            self.running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self.slots.release()

    def _call(self, batch: list[_Item]) -> Any:
        n = max(len(i.args) for i in batch)
        if any(len(i.args) != n for i in batch):
            raise TypeError(f"calls to batched {self.name} must all pass the same number of positional arguments")
        args = [[i.args[k] for i in batch] for k in range(n)]
        kwargs = {k: [i.kwargs[k] for i in batch] for k in batch[0].kwargs}
        return self.fn(*args, **kwargs)

    def _check(self, results: Any, n: int) -> None:
        try:
            size = len(results)
        except TypeError:
            size = -1
        if size != n or isinstance(results, (str, bytes, dict)):
            raise BatchSizeError(
                f"batched method {self.name} must return a sequence (list, tuple, array) with one "
                f"result per input; got {type(results).__name__} of length {size} for {n} inputs"
            )

    async def _run(self, batch: list[_Item]) -> None:
        futures: list[asyncio.Future[Any] | None] = [i.future for i in batch]
        try:
            if not self.streaming:
                results = await self._call(batch)
                self._check(results, len(batch))
                for fut, result in zip(futures, results, strict=True):
                    if fut is not None and not fut.done():
                        fut.set_result(result)
                return
            loop = asyncio.get_running_loop()
            async for results in self._call(batch):
                self._check(results, len(batch))
                for k, result in enumerate(results):
                    fut = futures[k]
                    if fut is None:
                        continue
                    if isinstance(result, type) and issubclass(result, _STREAM_END) or isinstance(result, _STREAM_END):
                        if not fut.done():
                            fut.set_exception(StopAsyncIteration())
                        futures[k] = None
                        continue
                    nxt = loop.create_future()
                    if not fut.done():
                        fut.set_result(_Next(result, nxt))
                    futures[k] = nxt
            for fut in futures:
                if fut is not None and not fut.done():
                    fut.set_exception(StopAsyncIteration())
        except Exception as e:
            for fut in futures:
                if fut is not None and not fut.done():
                    fut.set_exception(e)


def _first_arg(item: _Item) -> Any:
    if item.args:
        return item.args[0]
    return next(iter(item.kwargs.values()), None)


def _check_settings(max_batch_size: Any, batch_wait_timeout_s: Any, max_concurrent_batches: Any, batch_size_fn: Any) -> None:
    if not isinstance(max_batch_size, int) or isinstance(max_batch_size, bool) or max_batch_size < 1:
        raise ConfigError("max_batch_size", max_batch_size, "must be an integer >= 1")
    if not isinstance(batch_wait_timeout_s, (int, float)) or batch_wait_timeout_s < 0:
        raise ConfigError("batch_wait_timeout_s", batch_wait_timeout_s, "must be a number >= 0")
    if not isinstance(max_concurrent_batches, int) or max_concurrent_batches < 1:
        raise ConfigError("max_concurrent_batches", max_concurrent_batches, "must be an integer >= 1")
    if batch_size_fn is not None and not callable(batch_size_fn):
        raise ConfigError("batch_size_fn", batch_size_fn, "must be a function of the list of items, or None")


def batch(
    _func: Callable[..., Any] | None = None,
    /,
    max_batch_size: int = 10,
    batch_wait_timeout_s: float = 0.01,
    max_concurrent_batches: int = 1,
    batch_size_fn: Callable[[list[Any]], int] | None = None,
) -> Any:
    """``@serve.batch`` or ``@serve.batch(max_batch_size=..., batch_wait_timeout_s=...)``."""
    _check_settings(max_batch_size, batch_wait_timeout_s, max_concurrent_batches, batch_size_fn)
    settings = _Settings(max_batch_size, float(batch_wait_timeout_s), max_concurrent_batches, batch_size_fn)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        streaming = inspect.isasyncgenfunction(fn)
        if not (streaming or inspect.iscoroutinefunction(fn)):
            raise ConfigError("@serve.batch", fn.__qualname__, "the batched method must be `async def` (or an async generator)")
        params = list(inspect.signature(fn).parameters)
        is_method = bool(params) and params[0] == "self"
        attr = f"__serve_core_batch_{fn.__name__}"
        queues: dict[int, _BatchQueue] = {}

        def queue_for(owner: Any) -> _BatchQueue:
            if owner is None:
                key = id(asyncio.get_running_loop())
                if key not in queues:
                    queues[key] = _BatchQueue(fn, fn.__qualname__, settings, streaming)
                return queues[key]
            q = owner.__dict__.get(attr)
            if q is None:
                q = _BatchQueue(functools.partial(fn, owner), fn.__qualname__, settings, streaming)
                owner.__dict__[attr] = q
            return q

        async def enqueue(args: tuple[Any, ...], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
            owner = args[0] if is_method and args else None
            rest = args[1:] if owner is not None else args
            if not rest and not kwargs:
                raise TypeError(f"{fn.__qualname__} is batched: call it with one item")
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await queue_for(owner).submit(_Item(rest, kwargs, fut))
            return fut

        if streaming:
            @functools.wraps(fn)
            async def call_stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                fut = await enqueue(args, kwargs)
                while True:
                    try:
                        step = await fut
                    except StopAsyncIteration:
                        return
                    yield step.value
                    fut = step.next

            call: Any = call_stream
        else:
            @functools.wraps(fn)
            async def call_once(*args: Any, **kwargs: Any) -> Any:
                return await (await enqueue(args, kwargs))

            call = call_once

        def set_max_batch_size(n: int) -> None:
            _check_settings(n, settings.batch_wait_timeout_s, settings.max_concurrent_batches, None)
            settings.max_batch_size = n

        def set_batch_wait_timeout_s(t: float) -> None:
            _check_settings(settings.max_batch_size, t, settings.max_concurrent_batches, None)
            settings.batch_wait_timeout_s = float(t)

        call.set_max_batch_size = set_max_batch_size
        call.set_batch_wait_timeout_s = set_batch_wait_timeout_s
        call._get_max_batch_size = lambda: settings.max_batch_size
        call._get_batch_wait_timeout_s = lambda: settings.batch_wait_timeout_s
        call._serve_core_batched = True
        return call  # type: ignore[no-any-return]

    return wrap(_func) if _func is not None else wrap
