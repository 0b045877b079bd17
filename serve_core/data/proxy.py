"""The HTTP proxy: one per node, an ASGI app on uvicorn (uvloop + httptools).

It matches the longest route prefix, reads the body within its limits, and forwards
the request over a direct connection to a replica of the application's ingress
deployment. Errors become JSON bodies with the right status: 404 unknown route, 413
body too large, 408 timeout, 503 with Retry-After when the queue is full, 502 when a
replica died holding a non-idempotent request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from serve_core import log_setup, metrics
from serve_core.data import asgi, caller, frames
from serve_core.data.http_protocol import CLIENT_GONE, TIMED_OUT, Limits, protocol_class
from serve_core.data.loop_thread import LoopThread, undo_worker_niceness
from serve_core.errors import BackPressureError, NoReplicasError, RequestTimeoutError, ServeCoreError, client_message
from serve_core.ids import DeploymentID

log = logging.getLogger("serve_core.data.proxy")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PRECREATED_STATUSES = ("200", "500", "502", "503", "504")
READY_WAIT_S = 5.0  # how long a request waits for a starting proxy's routes
Send = Any


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class ProxyApp:
    """The ASGI application; routes come from the caller context's snapshot."""

    def __init__(self, ctx: caller.CallerContext, options: dict[str, Any]) -> None:
        self.ctx = ctx
        self.max_body = int(options.get("max_body_bytes", 10 * 1024 * 1024))
        self.timeout_s: float | None = options.get("request_timeout_s")
        # The body's deadline is the protocol's (http_protocol.py): here a late body reads as a disconnect.
        self.debug_errors = bool(options.get("debug_errors", False))
        self.expose_routes = bool(options.get("expose_routes", True))
        self.expose_metrics = bool(options.get("expose_metrics", True))
        self.access_log = log_setup.apply(options.get("logging_config"))
        self.routes: list[tuple[str, str, DeploymentID]] = []
        self.draining = False
        self.ready = False  # until the first routes arrive from the controller
        self._ready_event = asyncio.Event()
        self.ongoing = 0
        self.id_prefix = uuid.uuid4().hex[:12] + "-"  # request ids: unique per proxy, cheap per request
        self.ids = itertools.count()
        ctx.listeners.append(self.on_snapshot)
        ctx.start_watch()

    def on_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.ready = True
        self._ready_event.set()
        routes = [(prefix, app, DeploymentID.from_key(key)) for prefix, (app, key) in snapshot["routes"].items()]
        self.routes = sorted(routes, key=lambda r: len(r[0]), reverse=True)
        for prefix, app, _ in routes:
            # Series that exist at zero before the first error: Prometheus' increase() loses
            # part of a series' first sample, which would hide the start of an outage.
            for method in ("GET", "POST"):
                for status in PRECREATED_STATUSES:
                    metrics.child(metrics.HTTP_REQUESTS, prefix, app, method, status)

    async def wait_routes(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready_event.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    def match(self, path: str) -> tuple[str, str, DeploymentID] | None:
        for prefix, app, dep in self.routes:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return prefix, app, dep
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await _reply(send, 404, {"error": "NotFound", "message": "only HTTP is served"})
            return
        try:
            await self.http(scope, receive, send)
        except asyncio.CancelledError:
            if not scope.get(CLIENT_GONE):
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # the client went away: nobody to answer, nothing to log

    async def http(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        path = scope["path"]
        if path.startswith("/-/"):
            await self.builtin(path, send)
            return
        request_id, send = self.with_request_id(scope, send)
        if not self.ready:
            # A just-restarted proxy listens before its routes arrive (usually within a
            # fraction of a second): hold the request for them rather than fail it.
            try:
                await asyncio.wait_for(self._ready_event.wait(), READY_WAIT_S)
            except TimeoutError:
                await _reply(send, 503, {"error": "Starting", "message": "this proxy has not received its routes yet"},
                             retry_after=1)
                return
        route = self.match(path)
        if route is None:
            doc: dict[str, Any] = {"error": "NotFound", "message": f"no application serves path {path!r}"}
            if self.expose_routes:
                doc["routes"] = [r[0] for r in self.routes]
            await _reply(send, 404, doc)
            return
        start = time.perf_counter()
        self.ongoing += 1
        status = 500
        try:
            status = await self.forward(scope, receive, send, route, request_id)
        finally:
            self.ongoing -= 1
            prefix, app, _ = route
            metrics.child(metrics.HTTP_REQUESTS, prefix, app, scope["method"], str(status)).inc()
            metrics.child(metrics.HTTP_LATENCY, prefix, app).observe(time.perf_counter() - start)
            if self.access_log:
                log_setup.ACCESS.info("%s %s %d %.1fms %s", scope["method"], path, status,
                                      (time.perf_counter() - start) * 1000, request_id)

    async def builtin(self, path: str, send: Send) -> None:
        if path == "/-/healthz":
            if self.draining or not self.ready:
                await _reply(send, 503, "draining" if self.draining else "starting", text=True)
            else:
                await _reply(send, 200, "success", text=True)
        elif path == "/-/routes" and self.expose_routes:
            await _reply(send, 200, {prefix: app for prefix, app, _ in self.routes})
        elif path == "/-/metrics" and self.expose_metrics:
            body, ctype = metrics.exposition()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype.encode())]})
            await send({"type": "http.response.body", "body": body})
        else:
            await _reply(send, 404, {"error": "NotFound", "message": f"unknown built-in path {path!r}"})

    def with_request_id(self, scope: dict[str, Any], send: Send) -> tuple[str, Send]:
        """The request's id (the caller's X-Request-ID, or a fresh one) and a ``send`` that puts it
        on the response: as Ray Serve, every answer carries it, a 404 or a 503 as much as a 200."""
        given = dict(scope.get("headers", ())).get(b"x-request-id", b"").decode("latin-1")
        request_id = given or f"{self.id_prefix}{next(self.ids)}"
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        return request_id, send_with_id

    async def forward(self, scope: dict[str, Any], receive: Any, send: Send, route: tuple[str, str, DeploymentID],
                      request_id: str) -> int:
        prefix, _, dep = route
        headers = dict(scope.get("headers", ()))
        try:
            body = await self.read_body(scope, receive)
        except _TooLarge:
            return await _reply(send, 413, {
                "error": "PayloadTooLarge",
                "message": f"request body is over max_body_bytes={self.max_body}; send less or raise http_options.max_body_bytes",
            })
        except _ClientGone:  # or the body missed its deadline, and the protocol answered 408
            return 408 if scope.get(TIMED_OUT) else 499
        meta = {
            "request_id": request_id,
            "model_id": headers.get(b"serve_multiplexed_model_id", b"").decode("latin-1"),  # any bytes: never a 500
            "route": prefix,
        }
        router = self.ctx.router(dep)
        idempotent = scope["method"] in IDEMPOTENT_METHODS
        request = asgi.trim_scope(scope, prefix)
        state = _ResponseState(send)
        try:
            if self.timeout_s is None:
                return await self._exchange(router, request, body, meta, idempotent, state.send)
            async with asyncio.timeout(self.timeout_s):
                return await self._exchange(router, request, body, meta, idempotent, state.send)
        except TimeoutError:
            err = RequestTimeoutError(f"request to {prefix!r}", self.timeout_s or 0)
            return await _reply(send, 408, {"error": "RequestTimeout", "message": str(err)}, started=state.started)
        except asyncio.CancelledError:
            if not scope.get(CLIENT_GONE):
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return 499  # the client went away; the replica was told to cancel

    async def read_body(self, scope: dict[str, Any], receive: Any) -> bytes:
        for k, v in scope.get("headers", ()):
            if k == b"content-length" and v.isdigit() and int(v) > self.max_body:
                raise _TooLarge
        first = await receive()  # usually the whole body, already buffered
        if first["type"] == "http.disconnect":
            raise _ClientGone
        if not first.get("more_body", False):
            if len(first.get("body", b"")) > self.max_body:
                raise _TooLarge
            return first.get("body", b"")
        return await self._read_rest(receive, first)

    async def _read_rest(self, receive: Any, msg: dict[str, Any]) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            if msg["type"] == "http.disconnect":
                raise _ClientGone
            data = msg.get("body", b"")
            size += len(data)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(data)
            if not msg.get("more_body", False):
                return b"".join(chunks)
            msg = await receive()

    async def _exchange(self, router: Any, request: dict[str, Any], body: bytes, meta: dict[str, Any], idempotent: bool, send: Send) -> int:
        try:
            call = await router.send(frames.KIND_HTTP, "__call__", (request, body), {}, meta, idempotent)
        except BackPressureError as e:
            retry_after_s = getattr(e, "retry_after_s", None)  # backpressure_config; 1 s when unset
            retry = 1 if retry_after_s is None else int(-(-retry_after_s // 1))
            return await _reply(send, e.http_status, {"error": "BackPressure", "message": str(e)}, retry_after=retry)
        except NoReplicasError as e:
            return await _reply(send, 503, {"error": "NoReplicas", "message": str(e)}, retry_after=1)
        except ServeCoreError as e:
            return await self._error(send, e.http_status, e, meta)
        try:
            return await self._relay(call, send, meta)
        finally:
            call.close()  # a response cut short (client gone, timeout) is cancelled at the replica

    async def _relay(self, call: Any, send: Send, meta: dict[str, Any]) -> int:
        """The replica's answer to the client: a whole response, an error, or a stream
        relayed chunk by chunk as it comes."""
        match call.first:
            case frames.Http(status=status, headers=headers, body=data):
                if not any(h[0] == b"content-length" for h in headers):
                    headers.append((b"content-length", b"%d" % len(data)))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": data})
                return int(status)
            case frames.Error(error=(original, wrapped)):
                return await self._error(send, 500, original or wrapped, meta, detail=wrapped)
            case frames.HttpStart(status=status, headers=headers):
                await send({"type": "http.response.start", "status": status, "headers": headers})
            case first:
                raise ServeCoreError(f"replica {call.replica_id} answered an HTTP request with {type(first).__name__}")
        while True:
            match await call.next():
                case frames.Chunk(data=data):
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                case frames.End():
                    await send({"type": "http.response.body", "body": b""})
                    return int(status)
                case broken:  # Error or Lost mid-stream: end the response abruptly
                    raise ConnectionAbortedError(f"stream from replica {call.replica_id} broke: {type(broken).__name__}")

    async def _error(self, send: Send, status: int, e: BaseException, meta: dict[str, Any],
                     detail: BaseException | None = None) -> int:
        """Answer an error with its type, a one-line message and the request id (all of
        ``detail`` with debug_errors); a longer story goes to this proxy's log under the id."""
        full = detail if detail is not None else e
        if "\n" in str(full).strip():
            log.warning("request %s to %s failed: %s", meta["request_id"], meta["route"], full)
        return await _reply(send, status, {
            "error": type(e).__name__,
            "message": str(full) if self.debug_errors else client_message(e),
            "request_id": meta["request_id"],
        })


class _ResponseState:
    """Wraps ``send`` to know whether a response has started."""

    __slots__ = ("_send", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def send(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            self.started = True
        await self._send(msg)


async def _reply(send: Send, status: int, doc: Any, text: bool = False, retry_after: int | None = None, started: bool = False) -> int:
    if started:
        return status
    body = doc.encode() if text else json.dumps(doc).encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8" if text else b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


def _raise_open_files(wanted: int) -> None:
    """Let this process hold ``wanted`` open files (max_connections plus headroom), as far
    as the hard limit allows; say so when it does not."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("proxy could not raise its open-file limit from %d to %d: %s", soft, target, e)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("proxy open-file limit is %d, below max_connections plus headroom (%d): connections beyond it wait "
                    "in the listen queue; raise the hard limit (ulimit -Hn) or lower http_options.max_connections",
                    soft, wanted)


class ProxyActor:
    """The Ray actor that runs a proxy's uvicorn server on its own loop thread."""

    def __init__(self, node_id: str, http_options: dict[str, Any]) -> None:
        import uvicorn

        undo_worker_niceness()
        self.node_id = node_id
        self.options = http_options
        opt = http_options.get
        limits = Limits(
            header_timeout_s=float(opt("header_timeout_s", 10.0)), body_timeout_s=float(opt("body_read_timeout_s", 30.0)),
            max_header_bytes=int(opt("max_header_bytes", 64 * 1024)), max_connections=int(opt("max_connections", 10_000)),
        )
        http = protocol_class(limits)  # refuses an unsupported uvicorn before anything listens
        _raise_open_files(limits.max_connections + 1024)
        self._thread = LoopThread("proxy")
        host, port = http_options.get("host", "127.0.0.1"), int(http_options.get("port", 8000))
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise OSError(f"proxy cannot listen on {host}:{port}: {e}; free the port or set http_options port") from e
        self.host, self.port = host, sock.getsockname()[1]

        async def setup() -> ProxyApp:
            return ProxyApp(caller.install(self._thread.loop), http_options)

        self.app = self._thread.run(setup())
        tls: dict[str, str | None] = {k: opt(k) for k in ("ssl_keyfile", "ssl_certfile", "ssl_keyfile_password", "ssl_ca_certs")}
        config = uvicorn.Config(
            self.app, http=http, ws="none", lifespan="off", access_log=False, log_level="warning", proxy_headers=False,
            timeout_keep_alive=int(opt("keep_alive_timeout_s", 75)), backlog=2048,
            ssl_keyfile=tls["ssl_keyfile"], ssl_certfile=tls["ssl_certfile"],
            ssl_keyfile_password=tls["ssl_keyfile_password"], ssl_ca_certs=tls["ssl_ca_certs"],
        )
        try:
            config.load()  # builds the TLS context: a bad file fails here, not in the background
        except OSError as e:
            raise ValueError(
                f"proxy TLS: cannot load ssl_certfile={tls['ssl_certfile']!r} / ssl_keyfile={tls['ssl_keyfile']!r} "
                f"(ssl_ca_certs={tls['ssl_ca_certs']!r}): {e}; check the files exist and are readable on node {node_id} "
                "and ssl_keyfile_password matches the key"
            ) from e
        # Listen only once the routes are here (or the controller is slow to answer): until
        # then a client's connection is refused, and it goes to another proxy at once
        # instead of waiting here.
        self._thread.run(self.app.wait_routes(READY_WAIT_S))
        sock.listen(2048)
        sock.setblocking(False)
        self.server = uvicorn.Server(config)
        self._serving = asyncio.run_coroutine_threadsafe(self.server.serve(sockets=[sock]), self._thread.loop)
        self.metrics_port = metrics.serve_metrics(opt("metrics_host") or (host if host not in ("0.0.0.0", "::") else "127.0.0.1"))

    def ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while not self.server.started and not self._serving.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._serving.done():  # uvicorn gave up (it exits on some start-up errors): say why
            exc = self._serving.exception()
            raise RuntimeError(f"proxy on {self.host}:{self.port} stopped serving: {exc!r}")
        return {"host": self.host, "port": self.port, "pid": os.getpid(), "metrics_port": self.metrics_port}

    def version(self) -> int:
        return self.app.ctx.version

    def drain(self) -> None:
        self.app.draining = True

    def ongoing(self) -> int:
        return self.app.ongoing

    def open_connections(self) -> int:
        """Client connections held now (those counted against max_connections)."""
        return len(self.server.server_state.connections)

    def wait_until_dead(self, timeout_s: float | None = None) -> None:
        """Returns after ``timeout_s`` while this process lives (a ray_seam client's until_dead calls it again);
        the caller learns of the death when the call fails."""
        threading.Event().wait(timeout_s)
