"""A minimal asyncio HTTP/1.1 GET for open-loop test load: one connection per request, no
pool. (httpx's pool spins the CPU once a few hundred requests wait in it, which turns a
server hiccup into a client that never recovers.)"""

import asyncio
from urllib.parse import urlsplit


class Refused(Exception):
    """The connection was refused (or reset while connecting): the request never reached a server."""


class Broken(Exception):
    """The connection broke after the request was sent, before a whole answer came."""


async def get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET with ``Connection: close``; bound it with asyncio.wait_for."""
    u = urlsplit(url)
    try:
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
    except (ConnectionRefusedError, ConnectionResetError) as e:
        # Reset during the handshake: the listener died with it in its backlog; nothing was sent.
        raise Refused(str(e)) from None
    try:
        writer.write(f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n\r\n".encode())
        try:
            raw = await reader.read(-1)
        except OSError as e:
            raise Broken(f"{type(e).__name__}: {e}") from None
    finally:
        writer.close()
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        raise Broken(f"no complete answer ({len(raw)} bytes)")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body


def _unchunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out
