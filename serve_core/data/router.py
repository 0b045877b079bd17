"""Choosing a replica and talking to it over a direct connection.

Each caller process (proxy, driver, replica using handles) has one Router per
deployment. It keeps one connection per replica, counts what it has in flight on
each, picks by power of two choices among replicas with room, queues when none has
room (bounded by ``max_queued_requests``), and retries:

- a request the replica never started (refused, connection failed) goes elsewhere;
- a request the replica accepted and then lost goes elsewhere only if idempotent.

``send`` returns a ``Call``: the request as the replica took it, which holds its replica
slot until ``close``. Connections come from a connector (``connector.py``), so these
promises are unit-tested without sockets.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

from serve_core import metrics
from serve_core.data import frames, wire
from serve_core.data.connector import Link, TcpConnector
from serve_core.data.frames import ENDS, Frame
from serve_core.errors import BackPressureError, NoReplicasError, ReplicaDiedError, ServeCoreError
from serve_core.ids import DeploymentID, ReplicaAddress

RECONNECT_BACKOFF_S = 1.0  # first wait after a failed or lost connection; doubles per failure
RECONNECT_BACKOFF_MAX_S = 8.0
REFUSED_AT_ZERO_DEMAND_S = 2.0  # a refusal at zero replicas counts as demand this long (several reports)
HELD_AT_ZERO_MAX = 1000  # requests a caller holds while a deployment has no replica (max_queued_requests=-1)
MAX_RETRIES = 3
RECENT_MODELS_MAX = 1024  # model ids a caller remembers sending, until replicas report them
RECENT_UNCONFIRMED_S = 10.0  # a model sent to a replica counts as there this long without its report
_rids = itertools.count(1)


def choose(loads: Sequence[tuple[str, int]], max_ongoing: int, rng: random.Random) -> str | None:
    """Power of two choices: of two random replicas with room, the less loaded one."""
    room = [(rid, load) for rid, load in loads if load < max_ongoing]
    if not room:
        return None
    if len(room) == 1:
        return room[0][0]
    a, b = rng.sample(room, 2)
    return a[0] if a[1] <= b[1] else b[0]


class PendingCall:
    """Frames of one request as they arrive, for a single consumer."""

    __slots__ = ("frames", "waiter")

    def __init__(self) -> None:
        self.frames: deque[Frame] = deque()
        self.waiter: asyncio.Future[Frame] | None = None

    def push(self, msg: Frame) -> None:
        w = self.waiter
        if w is not None and not w.done():
            self.waiter = None
            w.set_result(msg)
        else:
            self.frames.append(msg)

    async def next(self) -> Frame:
        if self.frames:
            return self.frames.popleft()
        self.waiter = asyncio.get_running_loop().create_future()
        return await self.waiter


class ReplicaConn:
    def __init__(self, addr: ReplicaAddress, connector: Any = None) -> None:
        self.addr = addr
        self.connector = connector or TcpConnector()
        self.inflight = 0
        self.pending: dict[int, PendingCall] = {}
        self.proto: wire.FrameProtocol | None = None
        self.connecting: asyncio.Future[None] | None = None
        self.down_until = 0.0
        self.failures = 0  # connections failed or lost in a row
        self.removed = False

    def usable(self, now: float) -> bool:
        return not self.removed and now >= self.down_until

    async def ensure(self, link: Link | None) -> wire.FrameProtocol:
        if self.proto is not None:
            return self.proto
        if link is None:
            raise ServeCoreError("this caller has no cluster secret yet; it is read from the cluster before the first replica set")
        if self.connecting is None:
            self.connecting = asyncio.ensure_future(self._connect(link))
        try:
            await asyncio.shield(self.connecting)
        finally:
            if self.connecting is not None and self.connecting.done():
                self.connecting = None
        assert self.proto is not None
        return self.proto

    async def _connect(self, link: Link) -> None:
        """Connect and authenticate both ends before any frame is sent (the connector's job)."""
        channel: list[Any] = []  # the one this attempt made, once it has one

        def lost(exc: Exception | None) -> None:
            if channel and self.proto is channel[0]:  # losses during the handshake are handled below
                self._on_lost(exc)

        try:
            proto = await self.connector.connect(self.addr, link, self._on_frame, lost)
        except (TimeoutError, OSError):
            self._back_off()
            raise
        channel.append(proto)
        self.proto, self.failures = proto, 0

    def _on_frame(self, msg: Frame) -> None:
        if isinstance(msg, frames.Unreadable):
            err = ServeCoreError(f"the reply of replica {self.addr.replica_id} could not be unpickled here: {msg.reason}")
            msg = frames.Error(msg.rid, (None, err), 0)
        p = self.pending.get(msg.rid)
        if p is not None:
            if type(msg) in ENDS:
                del self.pending[msg.rid]
            p.push(msg)

    def _back_off(self) -> None:
        self.down_until = time.monotonic() + min(RECONNECT_BACKOFF_MAX_S, RECONNECT_BACKOFF_S * 2 ** self.failures)
        self.failures += 1

    def _on_lost(self, exc: Exception | None) -> None:
        self.proto = None
        self._back_off()
        pending, self.pending = self.pending, {}
        for rid, p in pending.items():
            p.push(frames.Lost(rid))

    def abort(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.abort()  # connection_lost then answers every pending call LOST
        else:
            self._on_lost(None)

    def close_if_idle(self) -> None:
        if self.removed and self.inflight == 0 and self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()


class Call:
    """A request a replica took: its first frame, the frames after it, and the replica
    slot it holds. ``close`` (safe to repeat) frees the slot, and tells the replica to stop
    first if the request has not ended; every consumer closes its call, whatever happens.
    A call whose first frame ended it holds nothing already."""

    __slots__ = ("router", "conn", "rid", "pending", "first", "_open")

    def __init__(self, router: Router, conn: ReplicaConn, rid: int, pending: PendingCall, first: Frame) -> None:
        self.router, self.conn, self.rid, self.pending, self.first = router, conn, rid, pending, first
        self._open = type(first) not in ENDS

    @property
    def replica_id(self) -> str:
        return self.conn.addr.replica_id

    async def next(self) -> Frame:
        """The frame after the first (streams only)."""
        return await self.pending.next()

    def close(self) -> None:
        if self._open:
            self._open = False
            self.router.cancel(self.conn, self.rid)


class Router:
    def __init__(self, dep: DeploymentID, no_replica_timeout_s: float = 30.0, connector: Any = None) -> None:
        self.dep = dep
        self.connector = connector or TcpConnector()  # how connections to replicas are made
        self.conns: dict[str, ReplicaConn] = {}
        self.max_ongoing = 5
        self.max_queued = -1
        self.idempotent = False
        self.no_replica_timeout_s = no_replica_timeout_s
        self.queued = 0
        self.models: dict[str, frozenset[str]] = {}  # replica id -> multiplexed models it holds
        # model id -> (replica last sent it, when): what reports have not confirmed yet
        self.recent: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.on_starved: Any = None  # called when a request finds no replica (scale from zero)
        self.link: Link | None = None  # set by the caller context before replicas arrive
        self._refused_at_zero_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._rng = random.Random()
        self._queued_gauge = metrics.child(metrics.ROUTER_QUEUED, dep.app, dep.name)
        self._retries = {
            r: metrics.child(metrics.ROUTER_RETRIES, dep.app, dep.name, r)
            for r in ("rejected", "connect_failed", "replica_died")
        }

    # -- replica set -------------------------------------------------------------------

    def update(self, info: dict[str, Any]) -> None:
        self.max_ongoing = info["max_ongoing"]
        self.max_queued = info["max_queued"]
        self.idempotent = info["idempotent"]
        self.backpressure: dict[str, Any] = info.get("backpressure") or {}  # read only once max_queued >= 0
        live = {a.replica_id: a for a in info["replicas"]}
        models = {rid: frozenset(ids) for rid, ids in info.get("models", {}).items()}
        now = time.monotonic()
        for rid, ids in models.items():
            if self.models.get(rid) != ids:  # a new report: it confirms what it lists. One made before
                # a model sent since arrived there does not list it yet: that entry stays a while.
                for m in [m for m, (r, at) in self.recent.items()
                          if r == rid and (m in ids or now - at > RECENT_UNCONFIRMED_S)]:
                    del self.recent[m]
        self.models = models
        dead = set(info.get("dead", ()))
        for rid, conn in list(self.conns.items()):
            if rid not in live:
                conn.removed = True  # finish what it has, take nothing new
                if rid in dead:
                    conn.abort()  # it died: what it held is lost now (retried if idempotent)
                else:
                    conn.close_if_idle()
                del self.conns[rid]
        for rid, addr in live.items():
            if rid not in self.conns:
                self.conns[rid] = ReplicaConn(addr, self.connector)
        self._wake(all_=True)

    def demand(self) -> int:
        """Requests this caller has running at replicas or waiting for one; at least one
        while a request refused for want of any replica is recent (max_queued_requests=0
        queues nothing, yet the deployment must still scale from zero)."""
        running = sum(c.inflight for c in self.conns.values()) + self.queued
        return max(running, 1) if time.monotonic() < self._refused_at_zero_until else running

    # -- sending -----------------------------------------------------------------------

    async def send(
        self, kind: str, method: str, args: Any, kwargs: Any, meta: dict[str, Any], idempotent: bool
    ) -> Call:
        """Deliver a request to a replica that takes it, and return it with its first frame
        (never Reject or Lost: those are retried here, or raised)."""
        idempotent = idempotent or self.idempotent
        tried: set[str] = set()
        died = 0
        while True:
            conn = await self._acquire(tried, meta.get("model_id", ""))
            rid = next(_rids)
            try:
                proto = await conn.ensure(self.link)
            except (TimeoutError, OSError):
                self.release(conn)
                tried.add(conn.addr.replica_id)
                self._retries["connect_failed"].inc()
                continue
            except BaseException:
                self.release(conn)
                raise
            pending = PendingCall()
            conn.pending[rid] = pending
            try:
                proto.send(frames.Req(rid, kind, method, args, kwargs, meta), by_value=kind == frames.KIND_CALL)
                first = await pending.next()
            except BaseException:
                self.cancel(conn, rid)
                raise
            if isinstance(first, frames.Reject):
                self.release(conn)
                tried.add(conn.addr.replica_id)
                self._retries["rejected"].inc()
                continue
            if isinstance(first, frames.Lost):
                self.release(conn)
                tried.add(conn.addr.replica_id)
                died += 1
                if idempotent and died <= MAX_RETRIES:
                    self._retries["replica_died"].inc()
                    continue
                raise ReplicaDiedError(self.dep.name, conn.addr.replica_id)
            if type(first) in ENDS:
                self.release(conn)
            return Call(self, conn, rid, pending, first)

    def cancel(self, conn: ReplicaConn, rid: int) -> None:
        """Free the slot of request ``rid``, and tell the replica to stop it if it has not
        ended (``Call.close`` is the way in for consumers)."""
        if conn.pending.pop(rid, None) is not None and conn.proto is not None:
            conn.proto.send(frames.Cancel(rid))
        self.release(conn)

    def release(self, conn: ReplicaConn) -> None:
        conn.inflight -= 1
        conn.close_if_idle()
        self._wake()

    def _pick(self, fresh: list[ReplicaConn], model_id: str) -> str | None:
        """Power of two choices; for a multiplexed model, first among the replicas that hold
        it, then among those holding the fewest models (so models spread before any replica
        has to evict one). What a replica holds: its last report, plus the models this caller
        sent it since."""
        def loads(conns: list[ReplicaConn]) -> list[tuple[str, int]]:
            return [(c.addr.replica_id, c.inflight) for c in conns]

        if not model_id:
            return choose(loads(fresh), self.max_ongoing, self._rng)
        held = {c.addr.replica_id: self.models.get(c.addr.replica_id, frozenset()) for c in fresh}
        for m, (rid, _) in self.recent.items():
            if rid in held:
                held[rid] = held[rid] | {m}
        pick = choose(loads([c for c in fresh if model_id in held[c.addr.replica_id]]), self.max_ongoing, self._rng)
        if pick is None:
            fewest = min(len(h) for h in held.values())
            pick = choose(loads([c for c in fresh if len(held[c.addr.replica_id]) == fewest]), self.max_ongoing, self._rng)
        if pick is None:
            pick = choose(loads(fresh), self.max_ongoing, self._rng)
        if pick is not None:
            self.recent[model_id] = (pick, time.monotonic())
            self.recent.move_to_end(model_id)
            while len(self.recent) > RECENT_MODELS_MAX:
                self.recent.popitem(last=False)
        return pick

    async def _acquire(self, tried: set[str], model_id: str = "") -> ReplicaConn:
        backoff = 0.001
        deadline: float | None = None
        while True:
            now = time.monotonic()
            usable = [c for c in self.conns.values() if c.usable(now)]
            fresh = [c for c in usable if c.addr.replica_id not in tried]
            if fresh:
                pick = self._pick(fresh, model_id)
                if pick is not None:
                    conn = self.conns[pick]
                    conn.inflight += 1
                    return conn
            elif usable:
                # Every live replica refused or failed this request once: back off, retry.
                tried.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.1)
                continue
            if self.max_queued >= 0 and self.queued >= self.max_queued:
                if not usable:  # nothing may wait, but someone wants a replica: say so
                    self._refused_at_zero_until = now + REFUSED_AT_ZERO_DEMAND_S
                    if self.on_starved is not None:
                        self.on_starved()
                err = BackPressureError(self.dep.name, self.queued, self.max_queued)
                # backpressure_config: the HTTP answer a shed request gets (503 or 429, Retry-After)
                err.http_status = int(self.backpressure.get("status_code") or 503)
                err.retry_after_s = self.backpressure.get("retry_after_s")  # type: ignore[attr-defined]
                raise err
            if not usable and self.queued >= HELD_AT_ZERO_MAX:
                # No replica yet (scaling from zero, or all lost): even an unbounded queue
                # holds only so many, so that a burst cannot pile up without limit.
                raise BackPressureError(self.dep.name, self.queued, HELD_AT_ZERO_MAX, no_replica=True)
            timeout = None
            if not usable:
                if deadline is None and self.on_starved is not None:
                    self.on_starved()
                deadline = deadline or now + self.no_replica_timeout_s
                timeout = deadline - now
                if timeout <= 0:
                    raise NoReplicasError(self.dep.name, self.no_replica_timeout_s)
                # A replica that is down may come back (reconnect backoff).
                if self.conns:
                    timeout = min(timeout, RECONNECT_BACKOFF_S)
            await self._wait(timeout)

    async def _wait(self, timeout: float | None) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self.queued += 1
        self._queued_gauge.set(self.queued)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self.queued -= 1
            self._queued_gauge.set(self.queued)
            if not fut.done():
                fut.cancel()

    def _wake(self, all_: bool = False) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                if not all_:
                    return
