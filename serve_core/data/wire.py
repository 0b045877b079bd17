"""Framing for the direct connections between callers and replicas.

A connection starts with the mutual handshake of ``handshake.py``; until both ends have
proved they hold the cluster secret, no frame is parsed and nothing is unpickled. Then a
frame is a 4-byte big-endian length, the 8-byte request id, and a pickled tuple: one of
the messages of ``frames.py`` with its op code first. The id travels outside the pickle
so that a frame that cannot be unpickled still gets an answer. ``FrameProtocol`` hands
its owner typed frames and takes typed frames to send.

Frames are capped (``max_frame``): a peer that declares a larger one is cut off before
its payload is buffered, and a sender finds out before it sends (a reply too large
becomes an Error frame that names the limit).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import cloudpickle

from serve_core import metrics
from serve_core.data.frames import Cancel, Error, Frame, Req, Unreadable, from_wire, to_wire
from serve_core.data.handshake import TIMEOUT_S, ClientHandshake, HandshakeError, ServerHandshake
from serve_core.errors import FrameTooLargeError

log = logging.getLogger("serve_core.data.wire")

_HEAD = struct.Struct(">IQ")
DEFAULT_MAX_FRAME = 11 * 1024 * 1024  # the proxy's default body limit (10 MiB) plus headroom
AUTH_LOG_EVERY_S = 10.0  # failed handshakes are logged at most this often per process


def encode(frame: Frame, by_value: bool = False) -> bytes:
    """``by_value`` for user objects: classes from ``__main__`` or a module the peer
    cannot import must travel by value (cloudpickle); plain pickle is faster for
    the proxy's own dicts and bytes."""
    msg = to_wire(frame)
    if by_value:
        data = cloudpickle.dumps(msg, protocol=5)
    else:
        try:
            data = pickle.dumps(msg, protocol=5)
        except (pickle.PicklingError, AttributeError, TypeError):
            data = cloudpickle.dumps(msg, protocol=5)
    return _HEAD.pack(len(data), frame.rid) + data


class _AuthLog:
    """Counts failed handshakes and logs them, at most once per AUTH_LOG_EVERY_S."""

    def __init__(self) -> None:
        self._last = 0.0
        self._quiet = 0

    def failed(self, side: str, peer: Any, why: str) -> None:
        metrics.child(metrics.AUTH_FAILURES, side).inc()
        now = time.monotonic()
        if now - self._last < AUTH_LOG_EVERY_S:
            self._quiet += 1
            return
        more = f" ({self._quiet} more since the last report)" if self._quiet else ""
        log.warning("refused a direct connection as %s: peer %s: %s%s", side, peer, why, more)
        self._last, self._quiet = now, 0


auth_log = _AuthLog()


class HandshakeGate:
    """Bounds the connections a listener holds before they authenticate, so that a flood
    of connections that never finish the handshake cannot use up a replica's descriptors
    (each would otherwise be held for the handshake's whole deadline)."""

    def __init__(self, limit: int = 128) -> None:
        self.limit = limit
        self.pending = 0

    def enter(self) -> bool:
        if self.pending >= self.limit:
            return False
        self.pending += 1
        return True

    def leave(self) -> None:
        self.pending -= 1


class FrameProtocol(asyncio.Protocol):
    """Authenticates the peer, then splits the byte stream into frames and hands each
    decoded frame to ``on_frame``.

    ``handshake`` is the side this end plays; ``None`` only where both ends are already
    trusted (tests of the framing). ``ready`` resolves once the peer is authenticated, or
    fails with HandshakeError or ConnectionError.
    """

    def __init__(
        self, on_frame: Callable[[Frame], None], on_lost: Callable[[Exception | None], None],
        handshake: ServerHandshake | ClientHandshake | None, max_frame: int = DEFAULT_MAX_FRAME,
        gate: HandshakeGate | None = None,
    ) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._handshake = handshake
        self.max_frame = max_frame
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.ready: asyncio.Future[None] | None = None
        self._gate = gate
        self._gated = False  # counted in the gate until authenticated or closed

    @property
    def side(self) -> str:
        return "replica" if isinstance(self._handshake, ServerHandshake) else "caller"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        if self._handshake is None:
            self.ready.set_result(None)
            return
        if self._gate is not None:
            if not self._gate.enter():
                self._refuse(f"more than {self._gate.limit} connections are waiting to authenticate")
                return
            self._gated = True
        self._timer = loop.call_later(TIMEOUT_S, self._refuse, f"no handshake within {TIMEOUT_S:g}s")
        if isinstance(self._handshake, ServerHandshake):
            self.transport.write(self._handshake.hello())  # type: ignore[union-attr]

    def _handshake_over(self, error: Exception | None) -> None:
        """The handshake succeeded (``error`` None), failed or was cut short: free its place
        in the gate, stop its deadline, and settle ``ready``."""
        if self._gated and self._gate is not None:
            self._gated = False
            self._gate.leave()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.ready is not None and not self.ready.done():
            if error is None:
                self.ready.set_result(None)
            else:
                self.ready.set_exception(error)
                self.ready.exception()  # retrieved here: a caller may have stopped waiting

    def _refuse(self, why: str) -> None:
        auth_log.failed(self.side, self.transport.get_extra_info("peername") if self.transport else None, why)
        self._handshake_over(HandshakeError(why))
        if self.transport is not None:
            self.transport.abort()

    def _authenticate(self, data: bytes) -> bytes:
        """Feed the handshake; return the bytes after it once the peer is authenticated."""
        hs = self._handshake
        assert hs is not None and self.transport is not None
        try:
            out, rest = hs.feed(data)
        except HandshakeError as e:
            self._refuse(str(e))
            return b""
        if out:
            self.transport.write(out)
        if not hs.done:
            return b""
        self._handshake = None
        self._handshake_over(None)
        return rest

    def data_received(self, data: bytes) -> None:
        if self._handshake is not None:
            data = self._authenticate(data)
            if not data:
                return
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        head = _HEAD.size
        while n - pos >= head:
            size, rid = _HEAD.unpack_from(buf, pos)
            if size > self.max_frame:
                log.warning("peer %s declared a frame of %d bytes, over max_frame_bytes=%d: connection closed",
                            self.transport.get_extra_info("peername") if self.transport else None, size, self.max_frame)
                self._buf = bytearray()
                if self.transport is not None:
                    self.transport.abort()
                return
            if n - pos - head < size:
                break
            frame: Frame
            try:
                frame = from_wire(pickle.loads(memoryview(buf)[pos + head : pos + head + size]), rid)
            except Exception as e:  # e.g. a class the receiver cannot import
                frame = Unreadable(rid, f"{type(e).__name__}: {e}")
            pos += head + size
            self._on_frame(frame)
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._handshake_over(ConnectionError(f"connection closed during the handshake ({exc})"))
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._on_lost(exc)

    def send(self, frame: Frame, by_value: bool = False) -> None:
        """Write one frame. A request over the frame cap raises FrameTooLargeError; a
        reply over it goes out as an Error frame naming the limit instead."""
        if self.transport is None or self.transport.is_closing():
            return
        data = encode(frame, by_value)
        if len(data) - _HEAD.size > self.max_frame:
            err = FrameTooLargeError(len(data) - _HEAD.size, self.max_frame)
            if isinstance(frame, (Req, Cancel)):
                raise err
            data = encode(Error(frame.rid, (None, err), getattr(frame, "ongoing", 0)))
        self.transport.write(data)

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
