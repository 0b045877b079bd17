"""A replica: one process holding one instance of the user's class or function.

It serves direct connections from proxies and handles on its own uvloop thread and
answers the controller (initialize, reconfigure, health, drain) as a Ray actor.
``max_ongoing_requests`` is enforced here: a request beyond it is rejected at once so
the caller can queue it or try another replica.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import os
import pickle
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cloudpickle

from serve_core import context, log_setup, metrics
from serve_core.data import asgi, frames, multiplex, tls, wire
from serve_core.data.handshake import ServerHandshake
from serve_core.data.loop_thread import LoopThread, undo_worker_niceness
from serve_core.errors import ServeCoreError, UserCodeError, client_message
from serve_core.ids import DeploymentID

log = logging.getLogger("serve_core.data.replica")


class _Conn:
    """One caller's connection and the requests it has running here."""

    def __init__(self, server: ReplicaServer) -> None:
        self.server = server
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.proto = wire.FrameProtocol(
            self.on_frame, self.on_lost, ServerHandshake(server.secret), server.data_path["max_frame_bytes"], server.gate)

    def on_frame(self, frame: frames.Frame) -> None:
        match frame:
            case frames.Req():
                self.server.accept(self, frame)
            case frames.Cancel(rid=rid):
                task = self.tasks.get(rid)
                if task is not None:
                    task.cancel()
            case frames.Unreadable(rid=rid, reason=reason):
                err = ServeCoreError(
                    f"replica of {self.server.dep.name!r} could not unpickle the request ({reason}); "
                    "define argument classes in a module the replicas can import, or in the driver script"
                )
                self.proto.send(frames.Error(rid, (None, err), self.server.ongoing))

    def on_lost(self, exc: Exception | None) -> None:
        for task in list(self.tasks.values()):
            task.cancel()


class ReplicaServer:
    """Runs on the replica's loop thread; owns the user object."""

    def __init__(self, spec: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.loop = loop
        self.dep: DeploymentID = spec["deployment_id"]
        self.replica_id: str = spec["replica_id"]
        self.max_ongoing: int = spec["max_ongoing"]
        self.ongoing = 0
        self.draining = False
        self.target: Any = None
        self.instance: Any = None
        self.asgi_app: Any = None
        self.pool = ThreadPoolExecutor(max_workers=max(4, self.max_ongoing), thread_name_prefix="replica-sync")
        labels = (self.dep.app, self.dep.name, self.replica_id)
        self._latency = metrics.child(metrics.REPLICA_LATENCY, *labels)
        self._ongoing_gauge = metrics.child(metrics.REPLICA_ONGOING, *labels)
        self._rejected = metrics.child(metrics.REPLICA_REJECTED, *labels)
        self._outcomes = {o: metrics.child(metrics.REPLICA_REQUESTS, *labels, o) for o in ("ok", "error", "cancelled")}
        self._server: asyncio.AbstractServer | None = None
        self._models_seq = 0
        self.secret = b""  # the cluster's data path secret, set by start
        self.gate = wire.HandshakeGate()
        # From the controller (config.data_path_settings); the replica imports no config models (cold start).
        self.data_path: dict[str, Any] = spec.get("data_path") or {"max_frame_bytes": wire.DEFAULT_MAX_FRAME}

    # -- lifecycle (called by the actor through the loop) -------------------------

    async def start(self, host: str, secret: bytes) -> dict[str, Any]:
        """Build the user object, then listen on ``host`` (the node's cluster address)
        for callers that prove they hold ``secret``."""
        from serve_core.data import caller

        self.secret = secret
        caller.install(self.loop)  # handles unpickled below must route from this loop
        self.target = cloudpickle.loads(self.spec["def_bytes"])
        args, kwargs = cloudpickle.loads(self.spec["init_bytes"])
        ingress = getattr(self.target, "__serve_core_ingress__", None)
        if inspect.isclass(self.target):
            self.instance = await self._construct(args, kwargs)
            if ingress is not None:
                asgi.bind_class_routes(ingress, self.target, self.instance)
                self.asgi_app = ingress
        context.set_replica_context(
            context.ReplicaContext(self.dep.app, self.dep.name, self.replica_id, self.instance or self.target)
        )
        multiplex.set_reporter(self._report_models)
        if self.spec.get("user_config") is not None:
            await self.reconfigure(self.spec["user_config"])
        await self.check_health()  # healthy before it takes traffic (and before an old replica drains)
        self._server = await self.loop.create_server(
            lambda: _Conn(self).proto, host=host, port=0, backlog=1024, ssl=tls.server_context(self.data_path))
        port = self._server.sockets[0].getsockname()[1]
        metrics_port = metrics.serve_metrics(self.data_path.get("metrics_host") or host)
        return {"host": host, "port": port, "pid": os.getpid(), "metrics_port": metrics_port}

    def _report_models(self, model_ids: list[str]) -> None:
        """Tell the controller which multiplexed models this replica holds (callers route
        those ids here). Fire and forget: a lost report only costs a model load elsewhere."""
        from serve_core import ray_seam

        self._models_seq += 1
        seq = self._models_seq  # sends may overtake each other in the pool: the latest wins

        def send() -> None:
            controller = ray_seam.get_controller()
            if controller is not None:
                controller.record_models(self.dep.key(), self.replica_id, model_ids, seq)

        self.loop.run_in_executor(None, send)

    async def _construct(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the constructor on the replica's loop thread, with the loop running, as Ray
        Serve does: ``asyncio.get_running_loop()`` and ``create_task`` work in a sync
        ``__init__``, and an ``async def __init__`` is awaited. It blocks the loop while it
        runs, which costs nothing: this replica listens only once it has returned. (A
        thread-pool constructor with the loop merely *set* as running would let user code
        call the loop from a foreign thread, which asyncio does not allow.)"""
        context.set_replica_context(context.ReplicaContext(self.dep.app, self.dep.name, self.replica_id, None))
        if not inspect.iscoroutinefunction(self.target.__init__):
            return self.target(*args, **kwargs)
        obj = self.target.__new__(self.target)
        await obj.__init__(*args, **kwargs)
        return obj

    async def reconfigure(self, user_config: Any) -> None:
        fn = getattr(self.instance, "reconfigure", None)
        if fn is None:
            raise ServeCoreError(
                f"deployment {self.dep.name!r} got user_config but its class has no "
                "reconfigure(self, config) method; add one or drop user_config"
            )
        await self.invoke(fn, (user_config,), {})

    async def check_health(self) -> None:
        fn = getattr(self.instance, "check_health", None)
        if fn is not None:
            await self.invoke(fn, (), {})

    async def drain(self, wait_loop_s: float, timeout_s: float) -> int:
        """Refuse new requests and wait for running ones; return how many were left."""
        self.draining = True
        deadline = time.monotonic() + timeout_s
        while self.ongoing > 0 and time.monotonic() < deadline:
            await asyncio.sleep(min(wait_loop_s, 0.05))
        if self._server is not None:
            self._server.close()
        fn = getattr(self.instance, "__del__", None)
        if fn is not None and inspect.iscoroutinefunction(fn):
            await fn()
        return self.ongoing

    # -- data path -----------------------------------------------------------------

    def accept(self, conn: _Conn, req: frames.Req) -> None:
        rid, kind, method, args, kwargs, meta = req
        if self.draining or self.ongoing >= self.max_ongoing:
            self._rejected.inc()
            conn.proto.send(frames.Reject(rid, self.ongoing))
            return
        self.ongoing += 1
        self._ongoing_gauge.set(self.ongoing)
        task = conn.tasks[rid] = self.loop.create_task(self._run(conn, rid, kind, method, args, kwargs, meta))
        task.add_done_callback(functools.partial(self._never_ran, conn, rid))

    def _never_ran(self, conn: _Conn, rid: int, task: asyncio.Task[None]) -> None:
        """A request cancelled before its task's first step (its CANCEL came in the same read
        as the REQ): ``_run`` and its ``finally`` never ran, so give its slot back here."""
        if conn.tasks.get(rid) is task:
            del conn.tasks[rid]
            self.ongoing -= 1
            self._ongoing_gauge.set(self.ongoing)
            self._outcomes["cancelled"].inc()

    async def _run(self, conn: _Conn, rid: int, kind: str, method: str, args: Any, kwargs: Any, meta: dict[str, Any]) -> None:
        start = time.perf_counter()
        outcome = "ok"
        context.request_context.set(
            context.RequestContext(meta.get("request_id", ""), meta.get("model_id", ""), meta.get("route", ""))
        )
        try:
            if kind == frames.KIND_HTTP:
                outcome = await self._http(conn.proto, rid, args[0], args[1])
            else:
                outcome = await self._call(conn.proto, rid, method, args, kwargs, meta.get("stream", False))
        except asyncio.CancelledError:
            outcome = "cancelled"
        finally:
            self.ongoing -= 1
            self._ongoing_gauge.set(self.ongoing)
            conn.tasks.pop(rid, None)
            self._latency.observe(time.perf_counter() - start)
            self._outcomes[outcome].inc()

    def _method(self, name: str) -> Any:
        if self.instance is None:
            if name != "__call__":
                raise AttributeError(f"function deployment {self.dep.name!r} has no method {name!r}")
            return self.target
        fn = getattr(self.instance, name, None)
        if fn is None:
            raise AttributeError(f"deployment {self.dep.name!r} has no method {name!r}")
        return fn

    async def invoke(self, fn: Any, args: Any, kwargs: Any) -> Any:
        """Call user code: coroutines on the loop, sync code in the thread pool."""
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            result = fn(*args, **kwargs)
        else:
            ctx = contextvars.copy_context()
            result = await self.loop.run_in_executor(self.pool, functools.partial(ctx.run, fn, *args, **kwargs))
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _call(self, proto: wire.FrameProtocol, rid: int, method: str, args: Any, kwargs: Any, stream: bool) -> str:
        try:
            result = await self.invoke(self._method(method), args, kwargs)
            if stream:
                async for item in _iterate(result, self):
                    proto.send(frames.Chunk(rid, item), by_value=True)
                    await proto.drain()
                proto.send(frames.End(rid, self.ongoing - 1))
            else:
                proto.send(frames.Result(rid, result, self.ongoing - 1), by_value=True)
            return "ok"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # user code failed: the caller gets it with the traceback
            proto.send(frames.Error(rid, self._exception(e), self.ongoing - 1), by_value=True)
            return "error"

    def _exception(self, e: Exception) -> tuple[Exception | None, ServeCoreError]:
        if isinstance(e, ServeCoreError):
            return None, e
        wrapped = UserCodeError(self.dep.name, type(e).__name__, str(e), traceback.format_exc())
        try:
            pickle.dumps(e)
            return e, wrapped
        except Exception:
            return None, wrapped

    async def _http(self, proto: wire.FrameProtocol, rid: int, scope: dict[str, Any], body: bytes) -> str:
        sink = asgi.FrameSink(proto, rid, lambda: self.ongoing - 1)
        receive = asgi.body_receiver(body)
        try:
            if self.asgi_app is not None:
                await self.asgi_app(scope, receive, sink)
            else:
                handler = self._method("__call__")
                # As Ray Serve: the Request is passed only to a handler that takes an argument.
                args = (asgi.make_request(scope, body),) if asgi.takes_request(handler) else ()
                result = await self.invoke(handler, args, {})
                if asgi.is_asgi_response(result):
                    await result(scope, receive, sink)
                elif inspect.isgenerator(result) or inspect.isasyncgen(result):
                    from starlette.responses import StreamingResponse

                    await StreamingResponse(_iterate(result, self))(scope, receive, sink)
                else:
                    status, headers, data = asgi.to_messages(result)
                    proto.send(frames.Http(rid, status, headers, data, self.ongoing - 1))
                    return "ok"
            if not sink.done:
                await sink({"type": "http.response.body", "body": b"", "more_body": False})
            return "ok" if sink.status < 500 else "error"
        except asyncio.CancelledError:
            raise
        except Exception as e:
            request_id = context.request_context.get().request_id  # the detail is logged under it
            log.warning("request %s failed in %s: %s", request_id, self.dep, e, exc_info=True)
            if sink.streaming:
                proto.send(frames.Error(rid, self._exception(e), self.ongoing - 1), by_value=True)
            else:
                status = e.http_status if isinstance(e, ServeCoreError) else 500
                if isinstance(e, json.JSONDecodeError | UnicodeDecodeError):
                    status = 400  # a malformed body (not JSON, or not UTF-8) is the client's fault
                # Clients get the type and one line; tracebacks (nested calls') only with debug_errors.
                message = client_message(e, debug=self.data_path.get("debug_errors", False))
                frame = asgi.error_body(status, type(e).__name__, message, deployment=self.dep.name, request_id=request_id)
                proto.send(frames.Http(rid, *frame, self.ongoing - 1))
            return "error"


async def _iterate(result: Any, server: ReplicaServer) -> Any:
    """Items of a sync or async generator; sync ones advance in the thread pool."""
    if inspect.isasyncgen(result):
        async for item in result:
            yield item
        return
    sentinel = object()
    it = iter(result)
    while True:
        item = await server.loop.run_in_executor(server.pool, next, it, sentinel)
        if item is sentinel:
            return
        yield item


class ReplicaActor:
    """The Ray actor around a ReplicaServer; its methods are the control plane's."""

    def __init__(self, spec: dict[str, Any]) -> None:
        undo_worker_niceness()
        log_setup.apply((spec.get("data_path") or {}).get("logging_config"))
        self._thread = LoopThread(f"replica-{spec['replica_id']}")
        self._server = ReplicaServer(spec, self._thread.loop)
        self._spec = spec
        self._info: dict[str, Any] | None = None
        self._init_error: BaseException | None = None
        self._init_lock = threading.Lock()

    def initialize(self, host: str | None = None) -> dict[str, Any]:
        """Start the user object once; a second call (a restarted controller adopting a
        replica that was still starting) waits for the first and gets its answer."""
        from serve_core import ray_seam

        with self._init_lock:
            if self._init_error is not None:
                raise self._init_error
            if self._info is None:
                host = host or ray_seam.node_ip()
                try:
                    info = self._thread.run(self._server.start(host, ray_seam.data_path_secret()))
                except BaseException as e:
                    self._init_error = e
                    raise
                self._info = {**info, "replica_id": self._spec["replica_id"], "node_id": ray_seam.node_id(),
                              "version": self._spec.get("version", ""), "config_version": self._spec.get("config_version", "")}
            return self._info

    def info(self) -> dict[str, Any]:
        """What initialize returned, or only the versions while it has not finished (for re-adoption)."""
        if self._info is not None:
            return {**self._info, "ready": True, "model_ids": multiplex.loaded_model_ids()}
        return {"ready": False, "version": self._spec.get("version", ""), "config_version": self._spec.get("config_version", "")}

    def wait_until_dead(self, timeout_s: float | None = None) -> None:
        """Returns after ``timeout_s`` while this process lives (a ray_seam client's until_dead calls it again);
        the controller learns of the death when the call fails."""
        threading.Event().wait(timeout_s)

    def reconfigure(self, user_config: Any) -> None:
        self._thread.run(self._server.reconfigure(user_config))

    def check_health(self) -> None:
        self._thread.run(self._server.check_health())

    def drain(self, wait_loop_s: float, timeout_s: float) -> int:
        return self._thread.run(self._server.drain(wait_loop_s, timeout_s))

    def ongoing(self) -> int:
        return self._server.ongoing

    def pid(self) -> int:
        return os.getpid()
