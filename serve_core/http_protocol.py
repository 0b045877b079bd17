"""uvicorn's httptools protocol with the limits a public-facing proxy needs.

Added: a deadline for a request's headers (a slowloris client is cut off with 408),
a cap on header bytes (431), and cancelling the request's task the moment its client
disconnects, so the proxy needs no watcher task per request.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CLIENT_GONE = "serve_core.client_gone"  # set in the scope before the task is cancelled


def protocol_class(header_timeout_s: float, max_header_bytes: int) -> type[HttpToolsProtocol]:
    class Protocol(_LimitedProtocol):
        pass

    Protocol.header_timeout_s = header_timeout_s
    Protocol.max_header_bytes = max_header_bytes
    return Protocol


class _LimitedProtocol(HttpToolsProtocol):
    """The header deadline runs from a request's first byte (or the connection's
    start) to its last header byte. It is armed on data, not on the parser's
    message-begin callback, which may come before the client has sent anything."""

    header_timeout_s = 10.0
    max_header_bytes = 64 * 1024

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._headers_done = False
        self._task: asyncio.Task[Any] | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()  # a client that connects and says nothing is cut off too

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _reject(self, status: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self._headers_done:
            self._reject(b"408 Request Timeout")

    def data_received(self, data: bytes) -> None:
        if not self._headers_done:
            self._arm()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_header_bytes:
            self._headers_done = True
            self._disarm()
            self._reject(b"431 Request Header Fields Too Large")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._disarm()
        if self.transport.is_closing():
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._headers_done = False  # the next bytes start a new request

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
        cycle, task = self.cycle, self._task
        if cycle is not None and not cycle.response_complete and task is not None and not task.done():
            cycle.scope[CLIENT_GONE] = True  # type: ignore[literal-required]
            task.cancel()
        super().connection_lost(exc)
