"""uvicorn's httptools protocol with the limits a public-facing proxy needs.

Every resource an HTTP client controls is bounded here, below the ASGI app, so the
app never waits on a client without a deadline:

- time: one deadline per request, from its first byte (a connection's first request:
  from the connection's start). The head must arrive within ``header_timeout_s`` and
  the head and the whole body within ``body_timeout_s``; past either, 408 and close.
- head bytes: every byte received while a request's head is incomplete counts, also
  the partial header values httptools buffers without calling back; past
  ``max_header_bytes``, 431 and close.
- connections: a connection beyond ``max_connections`` open ones gets 503 and is closed
  before its request is read.

A rejected connection is answered, half-closed, and closed for good after a short
grace while its further bytes are discarded: closing at once with unread bytes would
make the kernel send a reset that can destroy the answer before the client reads it.

The request's task is also cancelled the moment its client disconnects, so the proxy
needs no watcher task per request.

This subclasses uvicorn internals: ``SUPPORTED_UVICORN`` names the versions it was
checked against (pyproject.toml pins the same range) and ``check_uvicorn`` refuses others.
"""

from __future__ import annotations

import asyncio
import contextvars
import http
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CLIENT_GONE = "serve_core.client_gone"  # set in the scope before the task is cancelled
TIMED_OUT = "serve_core.body_timed_out"  # set in the scope when the body missed its deadline

SUPPORTED_UVICORN = ((0, 46), (0, 56))  # [low, high): keep in step with pyproject.toml
_OVERRIDDEN = ("connection_made", "connection_lost", "data_received", "send_400_response", "on_message_begin",
               "on_url", "on_header", "on_headers_complete", "on_body", "on_message_complete", "on_response_complete",
               "_start_asgi_task")


class UnsupportedUvicornError(RuntimeError):
    """The installed uvicorn is outside the range whose internals this module overrides."""


def check_uvicorn(version: str | None = None) -> None:
    """Fail loudly unless ``version`` (default: the installed uvicorn) is supported."""
    if version is None:
        import uvicorn

        version = uvicorn.__version__
    low, high = SUPPORTED_UVICORN
    wanted = f"uvicorn>={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    try:
        parsed = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        parsed = ()
    missing = [name for name in _OVERRIDDEN if not hasattr(HttpToolsProtocol, name)]
    if len(parsed) != 2 or not (low <= parsed < high) or missing:
        detail = f" (its HttpToolsProtocol lacks {missing})" if missing else ""
        raise UnsupportedUvicornError(
            f"serve_core's HTTP proxy overrides internals of uvicorn's httptools protocol and supports "
            f"{wanted}; this process has uvicorn {version}{detail}. Install a supported version on every "
            f"node: pip install '{wanted}'"
        )


@dataclass(frozen=True)
class Limits:
    """What one proxy allows a client; see HTTPOptions for each field's meaning."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0  # head and whole body, from the request's first byte
    max_header_bytes: int = 64 * 1024
    max_connections: int = 10_000
    reject_grace_s: float = 1.0  # how long a rejected connection's bytes are read and dropped


def rejection(status: int, error: str, message: str) -> bytes:
    """A complete HTTP/1.1 response with a JSON error body that closes the connection."""
    body = json.dumps({"error": error, "message": message}).encode()
    phrase = http.HTTPStatus(status).phrase.encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body))


def protocol_class(limits: Limits) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` that enforces ``limits``."""
    check_uvicorn()

    class Protocol(_LimitedProtocol):
        pass

    Protocol.limits = limits
    return Protocol


class _LimitedProtocol(HttpToolsProtocol):
    limits = Limits()

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_request = False  # a request has begun and its message is not complete
        self._headers_done = False
        self._head_bytes = 0  # bytes received while the head is incomplete
        self._head_parsed = 0  # bytes of the URL and headers the parser handed over
        self._started = 0.0
        self._completed_in_feed = False
        self._rejected = False
        self._task: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.limits.max_connections:
            self._reject(503, "TooManyConnections",
                         f"this proxy holds its limit of {self.limits.max_connections} open connections; retry later")
            return
        self._begin_request()  # a client that connects and says nothing is cut off too

    # -- the deadline -------------------------------------------------------------

    def _begin_request(self) -> None:
        self._in_request = True
        self._headers_done = False
        self._head_bytes = self._head_parsed = 0
        self._started = self.loop.time()
        self._arm(self._started + self.limits.header_timeout_s)

    def _arm(self, when: float) -> None:
        self._disarm()
        self._timer = self.loop.call_at(when, self._deadline)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _deadline(self) -> None:
        self._timer = None
        if self._rejected or not self._in_request:
            return
        if self._earlier_unanswered():
            # A pipelined request waits behind one still being answered (uvicorn stops reading
            # meanwhile): the client is not late, and the connection is held by that answer.
            self._arm(self.loop.time() + self.limits.header_timeout_s)
            return
        if not self._headers_done:
            self._reject(408, "RequestTimeout",
                         f"request head not received within header_timeout_s={self.limits.header_timeout_s}s")
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.scope[TIMED_OUT] = True  # type: ignore[literal-required]
            self._reject(408, "RequestTimeout",
                         f"request body not received within body_read_timeout_s={self.limits.body_timeout_s}s")
        else:  # answered already (without reading the body): only the connection is left
            self._reject(None)

    def _earlier_unanswered(self) -> bool:
        """An earlier request on this connection is still being answered. Until its head is
        complete, ``self.cycle`` is the previous request's; after, the current one's, and
        earlier ones wait in uvicorn's pipeline."""
        if self._headers_done:
            return bool(self.pipeline)
        return self.cycle is not None and not self.cycle.response_complete

    # -- rejecting ----------------------------------------------------------------

    def _reject(self, status: int | None, error: str = "", message: str = "") -> None:
        """Answer (unless a response is under way), stop counting this connection,
        half-close, and drop further bytes until the grace ends or the client closes."""
        if self._rejected:
            return
        self._rejected = True
        self._disarm()
        self.connections.discard(self)
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        # Bytes written now would be read as the answer to an earlier request, or land inside
        # a response under way: then only close.
        busy = self._earlier_unanswered() or (
            self._headers_done and cycle is not None and cycle.response_started and not cycle.response_complete)
        if self._headers_done and cycle is not None and not cycle.response_started:
            cycle.disconnected = True  # the app reads a disconnect, and what it sends is dropped
            cycle.message_event.set()
        if status is not None and not busy:
            transport.write(rejection(status, error, message))
        if busy or not transport.can_write_eof():
            transport.close()
            return
        try:
            transport.write_eof()
        except (OSError, RuntimeError):
            transport.close()
            return
        self.flow.resume_reading()
        self._close_timer = self.loop.call_later(self.limits.reject_grace_s, transport.close)

    def send_400_response(self, msg: str) -> None:
        self._reject(400, "BadRequest", msg)

    # -- parsing ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return  # read and dropped: see _reject
        if not self._in_request:
            self._begin_request()
        self._completed_in_feed = False
        super().data_received(data)
        if self._rejected or self.transport.is_closing() or not self._in_request or self._headers_done:
            return
        # The head is still incomplete. If this read also finished an earlier request, the
        # new head's share of it is unknown: count from the next read (at most one read of
        # slack, never a false 431 on pipelined requests).
        if not self._completed_in_feed:
            self._head_bytes += len(data)
        if self._head_bytes > self.limits.max_header_bytes:
            self._reject_head_too_large()

    def _reject_head_too_large(self) -> None:
        self._reject(431, "RequestHeaderFieldsTooLarge",
                     f"request line and headers are over max_header_bytes={self.limits.max_header_bytes}")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_request:
            self._begin_request()

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_parsed += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self._rejected or self.transport.is_closing():
            return
        if self._head_parsed > self.limits.max_header_bytes:  # a whole head that came in one read
            self._reject_head_too_large()
            return
        self._headers_done = True
        super().on_headers_complete()
        if self._in_request:  # the body's deadline counts from the request's first byte
            self._arm(self._started + self.limits.body_timeout_s)

    def on_body(self, body: bytes) -> None:
        if not self._rejected:  # the rest of a read that was rejected mid-way is dropped
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._rejected:
            return
        super().on_message_complete()
        self._in_request = False
        self._headers_done = False
        self._completed_in_feed = True
        self._disarm()

    def on_response_complete(self) -> None:
        self._task = None
        super().on_response_complete()  # may start a pipelined request's task

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # As uvicorn does (a fresh context per request), but keep the task to cancel it.
        task = self.loop.create_task(cycle.run_asgi(app), context=contextvars.Context())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
        self._task = task

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        cycle, task = self.cycle, self._task
        if cycle is not None and not cycle.response_complete and task is not None and not task.done():
            cycle.scope[CLIENT_GONE] = True  # type: ignore[literal-required]
            task.cancel()
        super().connection_lost(exc)
