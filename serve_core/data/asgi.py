"""HTTP at the replica: requests in, ASGI messages out, and FastAPI class-based views.

The proxy ships a trimmed ASGI scope and the whole body; the replica rebuilds a
Starlette Request, runs user code, and sends the response back as frames.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from serve_core.data import frames, wire

Message = dict[str, Any]
SCOPE_KEYS = (
    "type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "query_string",
    "root_path", "headers", "client", "server",
)


def trim_scope(scope: dict[str, Any], root_path: str) -> dict[str, Any]:
    """The picklable part of a proxy's scope, with the route prefix as root_path."""
    out = {k: scope[k] for k in SCOPE_KEYS if k in scope}
    out["headers"] = list(scope.get("headers", ()))
    out["root_path"] = scope.get("root_path", "") + ("" if root_path == "/" else root_path)
    return out


def body_receiver(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # The proxy watches the client; the replica learns of a disconnect by CANCEL.
        import asyncio

        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive


def make_request(scope: dict[str, Any], body: bytes) -> Request:
    return Request(scope, body_receiver(body))


def to_messages(obj: Any, status: int = 200) -> tuple[int, list[list[bytes]], bytes]:
    """Ray Serve's conversion of a plain return value to an HTTP response."""
    if obj is None:
        body, ctype = b"", b"text/plain"
    elif isinstance(obj, bytes):
        body, ctype = obj, b"text/plain"
    elif isinstance(obj, str):
        body, ctype = obj.encode(), b"text/plain; charset=utf-8"
    else:
        try:  # plain JSON types: no need for fastapi, whose first import costs ~0.5 s of a request
            body = json.dumps(obj, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            from fastapi.encoders import jsonable_encoder

            body = json.dumps(jsonable_encoder(obj), separators=(",", ":")).encode()
        ctype = b"application/json"
    return status, [[b"content-type", ctype]], body


def error_body(status: int, error: str, message: str, **extra: Any) -> tuple[int, list[list[bytes]], bytes]:
    doc = {"error": error, "message": message, **extra}
    return status, [[b"content-type", b"application/json"]], json.dumps(doc).encode()


class FrameSink:
    """An ASGI ``send`` that turns response messages into frames to the caller.

    A response with a single body message goes out as one HTTP frame; anything
    longer streams as HttpStart, Chunks and End.
    """

    def __init__(self, proto: wire.FrameProtocol, rid: int, ongoing: Callable[[], int]) -> None:
        self._proto, self._rid, self._ongoing = proto, rid, ongoing
        self.status = 200
        self.headers: list[Any] = []
        self.started = False
        self.streaming = False
        self.done = False

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = [list(h) for h in message.get("headers", ())]
            self.started = True
            return
        if kind != "http.response.body" or self.done:
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if not self.streaming and not more:
            self.done = True
            self._proto.send(frames.Http(self._rid, self.status, self.headers, body, self._ongoing()))
            return
        if not self.streaming:
            self.streaming = True
            self._proto.send(frames.HttpStart(self._rid, self.status, self.headers))
        if body:
            self._proto.send(frames.Chunk(self._rid, bytes(body)))
            await self._proto.drain()
        if not more:
            self.done = True
            self._proto.send(frames.End(self._rid, self._ongoing()))


def is_asgi_response(obj: Any) -> bool:
    return isinstance(obj, Response)


_takes_request: dict[Any, bool] = {}  # per function: reading a signature costs more than a request


def takes_request(handler: Any) -> bool:
    """Whether an HTTP handler takes the Request (Ray Serve passes it only then)."""
    key = getattr(handler, "__func__", handler)
    known = _takes_request.get(key)
    if known is None:
        try:
            known = len(inspect.signature(handler).parameters) > 0
        except (TypeError, ValueError):  # no signature to read (a builtin): pass it
            known = True
        _takes_request[key] = known
    return known


class IngressApp:
    """What ``@serve.ingress`` leaves on a class: an ASGI app (FastAPI or any other), a
    function that builds one in the replica, or nothing, when the class's
    ``__serve_build_asgi_app__`` builds it after the constructor. The replica resolves it
    once the instance exists and then calls it as the deployment's ASGI app."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.app: Any = None

    def resolve(self, instance: Any) -> Any:
        if self.source is None:
            self.app = instance.__serve_build_asgi_app__()
        elif inspect.isfunction(self.source):
            self.app = self.source()
        else:
            self.app = self.source
        if self.app is None or not callable(self.app):
            raise TypeError(f"@serve.ingress: {self.source!r} gave {self.app!r}, which is not an ASGI app")
        return self.app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _walk_routes(router: Any, prefix: str = "") -> Iterator[tuple[Any, Any, str]]:
    from fastapi.routing import APIRoute, APIWebSocketRoute

    try:
        from fastapi.routing import _IncludedRouter as included
    except ImportError:  # older FastAPI flattens included routers
        included = None  # type: ignore[misc,assignment]
    for route in router.routes:
        if isinstance(route, (APIRoute, APIWebSocketRoute)):
            yield route, router, prefix
        elif included is not None and isinstance(route, included):
            yield from _walk_routes(route.original_router, prefix + route.include_context.prefix)


def bind_class_routes(app: Any, cls: type, instance: Any) -> None:
    """Make the FastAPI routes defined on ``cls``'s methods call ``instance``.

    FastAPI analysed those endpoints with ``self`` as a parameter; we give ``self`` a
    dependency that returns the replica's instance and re-mount the routes so FastAPI
    analyses them again. Routes of other classes sharing the app are dropped.
    """
    if isinstance(app, IngressApp):
        built = app.source is None or inspect.isfunction(app.source)
        app = app.resolve(instance)
        if built:
            return  # built in this replica: its routes are its own, none are methods of the class
    if not hasattr(app, "router") or not hasattr(app, "include_router"):
        return  # not FastAPI: an ASGI app of its own, with no routes on the class
    from fastapi import APIRouter, Depends
    from starlette.routing import compile_path

    def owned_by(route: Any, klass: type) -> bool:
        qual = getattr(route.endpoint, "__qualname__", "")
        return any(
            qual.startswith(base.__qualname__ + ".") and "<locals>" not in qual[len(base.__qualname__) + 1:]
            for base in klass.__mro__ if base is not object
        )

    def current_instance() -> Any:
        return instance

    mine = [(r, parent, prefix) for r, parent, prefix in _walk_routes(app.router) if owned_by(r, cls)]
    new_router = APIRouter()
    for route, parent, prefix in mine:
        parent.routes.remove(route)
        if prefix:
            route.path = prefix + route.path
            route.path_regex, route.path_format, route.param_convertors = compile_path(route.path)
        params = list(inspect.signature(route.endpoint).parameters.values())
        if not params:
            raise TypeError(f"route {route.path!r}: method {route.endpoint.__qualname__} must take self")
        new_params = [params[0].replace(default=Depends(current_instance))] + [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params[1:]
        ]
        route.endpoint.__signature__ = inspect.signature(route.endpoint).replace(parameters=new_params)
        route.endpoint._serve_core_cls = cls
        new_router.routes.append(route)
    app.include_router(new_router)
    for route, parent, _ in list(_walk_routes(app.router)):
        other = getattr(route.endpoint, "_serve_core_cls", None)
        if other is not None and other is not cls:
            parent.routes.remove(route)
