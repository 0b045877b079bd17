"""The messages of the direct data path, as named types.

A caller sends ``Req`` and ``Cancel``; a replica answers a request with exactly one of
``Reject`` (never started: full or draining), ``Result``, ``Error`` or ``Http`` (a whole
response), or with a stream: ``HttpStart`` or a first ``Chunk``, more ``Chunk``s, then
``End`` (or ``Error``). Every answer that ends a request carries the replica's ongoing
count, so callers learn its load for free. Two frames never travel: ``Unreadable`` is made
by the receiver for a frame it could not unpickle, ``Lost`` by the router for a request
whose connection closed before it ended.

On the wire a frame is a plain tuple, its op code first (``to_wire`` and ``from_wire``):
the receiver unpickles only builtins and the user's own values, never a class of ours.
"""

from __future__ import annotations

from typing import Any, NamedTuple

KIND_CALL = "call"  # Req.kind: a handle's method call
KIND_HTTP = "http"  # Req.kind: an HTTP request from a proxy; args = (ASGI scope, body)


class Req(NamedTuple):
    rid: int
    kind: str
    method: str
    args: Any
    kwargs: Any
    meta: dict[str, Any]


class Cancel(NamedTuple):
    rid: int


class Reject(NamedTuple):
    rid: int
    ongoing: int


class Result(NamedTuple):
    rid: int
    value: Any
    ongoing: int


class Error(NamedTuple):
    """``error`` is ``(original, wrapped)``: the user's exception when it pickles (else
    None), and the ServeCoreError that describes it."""

    rid: int
    error: tuple[BaseException | None, BaseException]
    ongoing: int


class Http(NamedTuple):
    rid: int
    status: int
    headers: list[Any]
    body: bytes
    ongoing: int


class HttpStart(NamedTuple):
    rid: int
    status: int
    headers: list[Any]


class Chunk(NamedTuple):
    """A body chunk of a streamed HTTP response, or one item of a streaming call."""

    rid: int
    data: Any


class End(NamedTuple):
    rid: int
    ongoing: int


class Unreadable(NamedTuple):
    rid: int
    reason: str


class Lost(NamedTuple):
    rid: int


Frame = Req | Cancel | Reject | Result | Error | Http | HttpStart | Chunk | End | Unreadable | Lost
ENDS = frozenset({Reject, Result, Error, Http, End, Lost})  # the frames that end a request: ``type(f) in ENDS``

_OPS: dict[Any, int] = {Req: 0, Cancel: 1, Reject: 2, Result: 3, Error: 4, Http: 5, HttpStart: 6, Chunk: 7, End: 8}
_TYPES: dict[int, tuple[Any, int]] = {op: (t, len(t._fields) + 1) for t, op in _OPS.items()}  # op -> type, length


def to_wire(frame: Frame) -> tuple[Any, ...]:
    return (_OPS[type(frame)], *frame)


def from_wire(msg: Any, rid: int) -> Frame:
    """The frame a received tuple holds, or Unreadable (for request ``rid``, from the
    frame's header) when it holds none: a peer of another version, or garbage."""
    if type(msg) is tuple and msg:
        try:
            kind, size = _TYPES[msg[0]]
        except (KeyError, TypeError):
            pass
        else:
            if len(msg) == size:
                frame: Frame = tuple.__new__(kind, msg[1:])  # as _make, without its call overhead
                return frame
    return Unreadable(rid, f"not a frame of this version: {type(msg).__name__} {str(msg)[:80]}")
