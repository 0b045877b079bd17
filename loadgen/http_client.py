"""A small HTTP/1.1 client for open-loop load, run inside a Locust process (gevent-patched sockets).

Why not Locust's HttpUser/FastHttpUser: their clients retry a broken kept-alive connection on
their own, which would hide a request a dying server had accepted, and they cannot tell a
refused connection (never reached the server, safe to send elsewhere) from a failure after the
request left. Here every phase is explicit: connect errors are ``RequestFailed`` with
``connect=True``; anything after is final. Time is bounded by one deadline for the whole exchange.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from geventhttpclient.response import HTTPParseError, HTTPResponse

# Errors that can only happen before the request left: the server never saw it.
# A reset during the handshake is a listener that died with the connection in its backlog:
# no request was sent, so it is as safe to send elsewhere as a refusal.
_CONNECT_KINDS = {errno.ECONNREFUSED: "refused", errno.ECONNRESET: "refused", errno.EHOSTUNREACH: "unreachable",
                  errno.ENETUNREACH: "unreachable"}
RETRYABLE = frozenset({"refused", "unreachable"})


class RequestFailed(Exception):
    """``connect``: the request never left (safe to send elsewhere); ``unanswered``: it left, and the
    connection ended before any byte of the answer (safe to send again only if it is idempotent)."""

    def __init__(self, kind: str, detail: str = "", connect: bool = False, unanswered: bool = False) -> None:
        self.kind, self.detail, self.connect, self.unanswered = kind, detail, connect, unanswered
        super().__init__(f"{kind}: {detail}" if detail else kind)


class _Answer(HTTPResponse):
    """The response parser, counting body bytes instead of keeping them."""

    def __init__(self, method: str) -> None:
        super().__init__(method=method)
        self.body_bytes = 0

    def _on_body(self, buf: bytearray) -> None:
        self.body_bytes += len(buf)


@dataclass
class Target:
    """One base URL with its pool of idle kept-alive connections."""

    url: str
    keepalive_idle_s: float = 2.0
    host: str = field(init=False)
    port: int = field(init=False)
    prefix: str = field(init=False)
    _idle: list[tuple[socket.socket, float]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None
        self.host, self.port, self.prefix = parts.hostname, parts.port, parts.path.rstrip("/")

    def _connect(self, deadline: float) -> socket.socket:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestFailed("timeout", "deadline passed before connecting")
        try:
            sock = socket.create_connection((self.host, self.port), timeout=remaining)
        except TimeoutError:
            raise RequestFailed("timeout", "connect timed out") from None
        except OSError as exc:
            kind = _CONNECT_KINDS.get(exc.errno or 0)
            if kind is not None:
                raise RequestFailed(kind, str(exc), connect=True) from None
            raise RequestFailed("connect_error", str(exc)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _take(self, deadline: float) -> socket.socket:
        now = time.monotonic()
        while self._idle:
            sock, since = self._idle.pop()
            # Drop connections the server may be closing: idle too long, or readable (EOF) already.
            if now - since <= self.keepalive_idle_s and not select.select([sock], [], [], 0)[0]:
                return sock
            sock.close()
        return self._connect(deadline)

    def _give_back(self, sock: socket.socket, cap: int) -> None:
        if len(self._idle) < cap:
            self._idle.append((sock, time.monotonic()))
        else:
            sock.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


def encode_request(target: Target, method: str, route: str, body: bytes | None,
                   headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target.prefix}{route} HTTP/1.1", f"Host: {target.host}:{target.port}",
             "User-Agent: serve-core-loadgen", "Accept: */*"]
    lower = {k.lower() for k in headers}
    if body is not None:
        if "content-type" not in lower:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


def exchange(target: Target, method: str, request: bytes, deadline: float, pool_cap: int) -> tuple[int, int]:
    """Send one request and read the full answer before ``deadline`` (monotonic seconds).

    Returns (status, body bytes). Raises RequestFailed: connect-phase errors have connect=True.
    """
    sock = target._take(deadline)
    received = 0
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestFailed("timeout", "deadline passed before sending")
        sock.settimeout(remaining)
        sock.sendall(request)
        answer = _Answer(method)
        while not (answer.message_complete and answer.status_code >= 200):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestFailed("timeout", f"no full answer ({received} bytes) by the deadline")
            sock.settimeout(remaining)
            data = sock.recv(65536)
            answer.feed(data)  # b"" tells the parser the connection ended
            if not data:
                if answer.message_complete and answer.status_code >= 200:
                    break  # a body delimited by the close
                raise RequestFailed("reset", f"connection closed after {received} bytes of the answer",
                                    unanswered=received == 0)
            received += len(data)
    except TimeoutError:
        sock.close()
        raise RequestFailed("timeout", "no answer by the deadline") from None
    except HTTPParseError as exc:
        sock.close()
        raise RequestFailed("protocol", str(exc)) from None
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        sock.close()
        raise RequestFailed("reset", str(exc), unanswered=received == 0) from None
    except OSError as exc:
        sock.close()
        raise RequestFailed("error", str(exc)) from None
    except BaseException:  # RequestFailed raised above, or the greenlet killed by a stop
        sock.close()
        raise
    if answer.should_close():
        sock.close()
    else:
        target._give_back(sock, pool_cap)
    return answer.status_code, answer.body_bytes
