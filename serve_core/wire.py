"""Framing for the direct connections between callers and replicas.

A frame is a 4-byte big-endian length, the 8-byte request id, and a pickled tuple
whose first item names the message and whose second is that id again. The id travels
outside the pickle so that a frame that cannot be unpickled still gets an answer. Callers send ``REQ`` and ``CANCEL``; replicas answer with the rest. Every
answer carries the replica's ongoing count so callers learn its load for free.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import Callable
from typing import Any

import cloudpickle

# caller -> replica
REQ = 0  # (REQ, rid, kind, method, args, kwargs, meta)
CANCEL = 1  # (CANCEL, rid)
# replica -> caller
REJECT = 2  # (REJECT, rid, ongoing): replica full or draining; never started
RESULT = 3  # (RESULT, rid, value, ongoing)
ERROR = 4  # (ERROR, rid, exception, ongoing)
HTTP = 5  # (HTTP, rid, status, headers, body, ongoing): whole response in one frame
HTTP_START = 6  # (HTTP_START, rid, status, headers)
CHUNK = 7  # (CHUNK, rid, data): a body chunk or a streamed item
END = 8  # (END, rid, ongoing)
UNREADABLE = 9  # (UNREADABLE, rid, error): made locally for a frame that did not unpickle

KIND_CALL = "call"
KIND_HTTP = "http"

_HEAD = struct.Struct(">IQ")
MAX_FRAME = 1 << 30


def encode(msg: tuple[Any, ...], by_value: bool = False) -> bytes:
    """``by_value`` for user objects: classes from ``__main__`` or a module the peer
    cannot import must travel by value (cloudpickle); plain pickle is faster for
    the proxy's own dicts and bytes."""
    if by_value:
        data = cloudpickle.dumps(msg, protocol=5)
    else:
        try:
            data = pickle.dumps(msg, protocol=5)
        except (pickle.PicklingError, AttributeError, TypeError):
            data = cloudpickle.dumps(msg, protocol=5)
    return _HEAD.pack(len(data), msg[1]) + data


class FrameProtocol(asyncio.Protocol):
    """Splits a byte stream into frames and hands each decoded tuple to ``on_frame``."""

    def __init__(self, on_frame: Callable[[tuple[Any, ...]], None], on_lost: Callable[[Exception | None], None]) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        head = _HEAD.size
        while n - pos >= head:
            size, rid = _HEAD.unpack_from(buf, pos)
            if size > MAX_FRAME:
                assert self.transport is not None
                self.transport.close()
                return
            if n - pos - head < size:
                break
            try:
                msg = pickle.loads(memoryview(buf)[pos + head : pos + head + size])
            except Exception as e:  # e.g. a class the receiver cannot import
                msg = (UNREADABLE, rid, f"{type(e).__name__}: {e}")
            pos += head + size
            self._on_frame(msg)
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._on_lost(exc)

    def send(self, msg: tuple[Any, ...], by_value: bool = False) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode(msg, by_value))

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def drain(self) -> None:
        """Wait while the peer is slow to read (streaming backpressure)."""
        if not self._paused:
            return
        self._drained = asyncio.get_running_loop().create_future()
        await self._drained
