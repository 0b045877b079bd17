"""DeploymentHandle and the responses it returns (Ray Serve's handle API).

A call runs on the process's caller loop. From that loop (inside a replica, or in
async code sharing it) it is a task; from any other thread it is a future, so
``.result()`` blocks only the calling thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from serve_core.data import caller, frames
from serve_core.data.router import Call
from serve_core.errors import ReplicaDiedError, RequestTimeoutError, ServeCoreError
from serve_core.exceptions import RayServeException, RequestCancelledError
from serve_core.ids import DeploymentID

__all__ = [
    "DeploymentHandle", "DeploymentResponse", "DeploymentResponseGenerator", "RayServeException",
    "RequestCancelledError",
]

_OPTION_NAMES = ("method_name", "stream", "multiplexed_model_id", "idempotent")


class DeploymentHandle:
    """A client of one deployment; picklable, so it can be passed to other deployments."""

    def __init__(
        self,
        deployment_name: str,
        app_name: str = "default",
        *,
        method_name: str = "__call__",
        stream: bool = False,
        multiplexed_model_id: str = "",
        idempotent: bool = False,
    ) -> None:
        self.deployment_name = deployment_name
        self.app_name = app_name
        self._opts: dict[str, Any] = {
            "method_name": method_name, "stream": stream,
            "multiplexed_model_id": multiplexed_model_id, "idempotent": idempotent,
        }

    @property
    def deployment_id(self) -> DeploymentID:
        return DeploymentID(self.app_name, self.deployment_name)

    def options(
        self,
        *,
        method_name: str | None = None,
        multiplexed_model_id: str | None = None,
        stream: bool | None = None,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> DeploymentHandle:
        """A copy with some call options changed (the others as they were)."""
        kwargs.pop("use_new_handle_api", None)
        if kwargs:
            raise TypeError(f"unknown handle options {sorted(kwargs)}; known: {list(_OPTION_NAMES)}")
        given = {"method_name": method_name, "multiplexed_model_id": multiplexed_model_id,
                 "stream": stream, "idempotent": idempotent}
        changes = {k: v for k, v in given.items() if v is not None}
        return DeploymentHandle(self.deployment_name, self.app_name, **{**self._opts, **changes})

    def is_initialized(self) -> bool:
        """Always true: a serve_core handle connects on its first call, nothing to set up."""
        return True

    def shutdown(self) -> None:
        """Nothing to release: connections belong to the process's caller, shared by handles."""

    async def shutdown_async(self) -> None:
        """Nothing to release (see ``shutdown``)."""

    def __getattr__(self, name: str) -> DeploymentHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.options(method_name=name)

    def __reduce__(self) -> Any:
        return _rebuild, (self.deployment_name, self.app_name, self._opts)

    def __repr__(self) -> str:
        return f"DeploymentHandle(deployment={self.deployment_name!r}, app={self.app_name!r})"

    def remote(self, *args: Any, **kwargs: Any) -> DeploymentResponse | DeploymentResponseGenerator:
        ctx = caller.get()
        meta = {
            "request_id": uuid.uuid4().hex, "model_id": self._opts["multiplexed_model_id"],
            "stream": self._opts["stream"],
        }
        call = _Call(ctx, self.deployment_id, self._opts["method_name"], args, kwargs, meta, bool(self._opts["idempotent"]))
        if self._opts["stream"]:
            return DeploymentResponseGenerator(call)
        return DeploymentResponse(call)


def _rebuild(name: str, app: str, opts: dict[str, Any]) -> DeploymentHandle:
    return DeploymentHandle(name, app, **opts)


def _on_loop(ctx: caller.CallerContext) -> bool:
    try:
        return asyncio.get_running_loop() is ctx.loop
    except RuntimeError:
        return False


async def _resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Responses passed as arguments are awaited first, as Ray Serve does."""
    if any(isinstance(a, DeploymentResponse) for a in args):
        args = tuple([await a if isinstance(a, DeploymentResponse) else a for a in args])
    if any(isinstance(v, DeploymentResponse) for v in kwargs.values()):
        kwargs = {k: (await v if isinstance(v, DeploymentResponse) else v) for k, v in kwargs.items()}
    return args, kwargs


def raise_error(payload: Any) -> None:
    original, wrapped = payload
    if original is not None:
        raise original from wrapped
    raise wrapped


class _Call:
    __slots__ = ("ctx", "dep", "method", "args", "kwargs", "meta", "idempotent")

    def __init__(self, ctx: caller.CallerContext, dep: DeploymentID, method: str, args: Any, kwargs: Any, meta: dict[str, Any], idempotent: bool) -> None:
        self.ctx, self.dep, self.method = ctx, dep, method
        self.args, self.kwargs, self.meta, self.idempotent = args, kwargs, meta, idempotent

    async def start(self) -> Call:
        args, kwargs = await _resolve(self.args, self.kwargs)
        router = self.ctx.router(self.dep)
        return await router.send(frames.KIND_CALL, self.method, args, kwargs, self.meta, self.idempotent)

    async def unary(self) -> Any:
        call = await self.start()
        try:
            match call.first:
                case frames.Result(value=value):
                    return value
                case frames.Error(error=error):
                    raise_error(error)
            raise ServeCoreError(f"unexpected {type(call.first).__name__} frame for a unary call to {self.dep}")
        finally:
            call.close()


class DeploymentResponse:
    """The future result of ``handle.remote()``: await it, ``.result()`` it, or pass it on."""

    def __init__(self, call: _Call) -> None:
        self._call = call
        ctx = call.ctx
        self._cancelled = False
        self._task: asyncio.Future[Any] | concurrent.futures.Future[Any]
        if _on_loop(ctx):
            self._task = ctx.loop.create_task(call.unary())
        else:
            self._task = asyncio.run_coroutine_threadsafe(call.unary(), ctx.loop)

    def __await__(self) -> Any:
        fut = self._task if isinstance(self._task, asyncio.Future) else asyncio.wrap_future(self._task)
        try:
            return (yield from fut.__await__())
        except asyncio.CancelledError:
            if self._cancelled:  # cancelled by .cancel(), not the awaiting task being cancelled
                raise RequestCancelledError(self.request_id) from None
            raise

    @property
    def request_id(self) -> str:
        return str(self._call.meta["request_id"])

    @property
    def by_reference(self) -> bool:
        """False: results always come back by value over the direct connection."""
        return False

    def cancelled(self) -> bool:
        return self._cancelled or self._task.cancelled()

    def __reduce__(self) -> Any:
        raise _not_picklable()

    def result(self, timeout_s: float | None = None, **_: Any) -> Any:
        if isinstance(self._task, asyncio.Future):
            raise RuntimeError(
                "DeploymentResponse.result() would block the event loop it waits on; "
                "use `await response` in async code"
            )
        try:
            return self._task.result(timeout_s)
        except concurrent.futures.TimeoutError:
            raise RequestTimeoutError(f"call to {self._call.dep}", timeout_s or 0) from None
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            raise RequestCancelledError(self.request_id) from None

    def cancel(self) -> None:
        """Cancel the call (the replica is told to stop it); awaiting the response, or its
        ``.result()``, then raises RequestCancelledError, as in Ray Serve."""
        self._cancelled = True
        if isinstance(self._task, asyncio.Future):
            self._task.cancel()
        else:
            self._call.ctx.loop.call_soon_threadsafe(self._task.cancel)


class _Stream:
    """The caller-loop side of a streaming call."""

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.running: Call | None = None
        self.finished = False
        self.cancelled = False

    async def next(self) -> Any:
        if self.cancelled:
            raise RequestCancelledError(str(self.call.meta["request_id"]))
        if self.finished:
            raise StopAsyncIteration
        if self.running is None:
            self.running = await self.call.start()
            frame = self.running.first
        else:
            frame = await self.running.next()
        if isinstance(frame, frames.Chunk):
            return frame.data
        self.close()
        match frame:
            case frames.End():
                raise StopAsyncIteration
            case frames.Error(error=error):
                raise_error(error)
            case frames.Lost():
                raise ReplicaDiedError(self.call.dep.name, self.running.replica_id)
        raise ServeCoreError(
            f"method {self.call.method!r} of {self.call.dep} is not a generator; "
            "call it without stream=True"
        )

    def close(self) -> None:
        """Ends the stream here; the replica is told to stop if it has not ended."""
        self.finished = True
        if self.running is not None:
            self.running.close()


class DeploymentResponseGenerator:
    """Items of a generator method called with ``handle.options(stream=True)``."""

    def __init__(self, call: _Call) -> None:
        self._stream = _Stream(call)
        self._loop = call.ctx.loop

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if _on_loop(self._stream.call.ctx):
            return await self._stream.next()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._stream.next(), self._loop))

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if _on_loop(self._stream.call.ctx):
            raise RuntimeError("iterate a streaming response with `async for` inside the event loop")
        try:
            return asyncio.run_coroutine_threadsafe(self._stream.next(), self._loop).result()
        except StopAsyncIteration:
            raise StopIteration from None

    def cancel(self) -> None:
        """Stop the stream; iterating it further raises RequestCancelledError."""
        self._stream.cancelled = True
        self._loop.call_soon_threadsafe(self._stream.close)

    @property
    def request_id(self) -> str:
        return str(self._stream.call.meta["request_id"])

    @property
    def by_reference(self) -> bool:
        """False: results always come back by value over the direct connection."""
        return False

    def cancelled(self) -> bool:
        return self._stream.cancelled

    def __reduce__(self) -> Any:
        raise _not_picklable()


def _not_picklable() -> ServeCoreError:
    return ServeCoreError(
        "a DeploymentResponse cannot be pickled: pass it to another handle's .remote() as a top-level "
        "argument (it is awaited first and its result sent), not inside a list, dict or object; or "
        "await it and pass the result"
    )
