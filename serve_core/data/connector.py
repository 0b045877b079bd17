"""How a caller reaches a replica: ``Link`` (what every connection needs: the cluster
secret, the frame cap, TLS) and ``TcpConnector``, the router's default connector (as httpx
has a transport): TCP, then the handshake both ends pass before any frame (handshake.py),
with keepalive so that a vanished node is noticed. The router takes any object with the
same ``connect``; its unit tests pass one with no sockets."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from serve_core.data import wire
from serve_core.data.frames import Frame
from serve_core.data.handshake import ClientHandshake
from serve_core.ids import ReplicaAddress

DEAD_PEER_TIMEOUT_MS = 2000  # a replica silent this long (not even its kernel) is gone: well under the 5 s a client waits
CONNECT_TIMEOUT_S = 1.0  # the peer's kernel completes a handshake at once: slower is a vanished node
HANDSHAKE_TIMEOUT_S = 5.0  # then the replica proves it holds the cluster secret (a loaded loop may be slow)


def _detect_dead_peer(sock: socket.socket | None) -> None:
    """Let the kernel notice a replica whose node vanished (cut off, powered off): such a
    peer never closes the connection, and the requests on it would wait forever. Keepalive
    probes are answered by the peer's kernel, so a replica busy in user code is not taken
    for dead; unacknowledged data gives up after TCP_USER_TIMEOUT."""
    if sock is None or not hasattr(socket, "TCP_KEEPIDLE"):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_PEER_TIMEOUT_MS)


@dataclass(frozen=True)
class Link:
    """How this caller opens direct connections: the cluster secret both ends prove they
    hold, the frame cap, and TLS when the cluster turns it on."""

    secret: bytes
    max_frame: int = wire.DEFAULT_MAX_FRAME
    ssl: ssl.SSLContext | None = None


class TcpConnector:
    """The router's way to a replica (as httpx has a transport): a TCP connection (TLS when
    the cluster turns it on), authenticated both ways (handshake.py) before any frame.
    Unit tests give the router a connector of their own, with no sockets."""

    async def connect(self, addr: ReplicaAddress, link: Link, on_frame: Callable[[Frame], None],
                      on_lost: Callable[[Exception | None], None]) -> wire.FrameProtocol:
        """A channel to ``addr``: ``send(msg, by_value=...)`` and ``transport``. Frames go
        to ``on_frame``; ``on_lost`` is told when the connection closes. Raises TimeoutError
        or OSError when it cannot be had."""
        loop = asyncio.get_running_loop()
        proto = wire.FrameProtocol(on_frame, on_lost, ClientHandshake(link.secret), link.max_frame)
        transport = None
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: proto, addr.host, addr.port, ssl=link.ssl), CONNECT_TIMEOUT_S)
            assert proto.ready is not None
            await asyncio.wait_for(asyncio.shield(proto.ready), HANDSHAKE_TIMEOUT_S)
        except (TimeoutError, OSError) as e:  # HandshakeError and ssl.SSLError are OSErrors (logged by wire)
            if transport is not None:
                transport.abort()
            if isinstance(e, ssl.SSLError):
                wire.auth_log.failed("caller", f"{addr.host}:{addr.port}", f"TLS: {e}")
            raise
        _detect_dead_peer(transport.get_extra_info("socket"))
        return proto
