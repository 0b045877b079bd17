"""The caller side of one process: its event loop, its routers, and what it knows of
the cluster.

A watcher long-polls the controller for the replica sets and routes and keeps the
last answer, so a caller goes on routing while the controller or the GCS is down.
Drivers get a loop thread of their own; replicas and proxies install theirs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from serve_core import ray_seam
from serve_core.data import tls, wire
from serve_core.data.connector import Link
from serve_core.data.loop_thread import LoopThread
from serve_core.data.router import Router
from serve_core.ids import DeploymentID

log = logging.getLogger("serve_core.data.caller")
LISTEN_TIMEOUT_S = 30.0
REPORT_INTERVAL_S = 0.5  # demand reports: at most 2 messages/s per caller process, none when idle


class CallerContext:
    def __init__(self, loop: asyncio.AbstractEventLoop, thread: LoopThread | None = None) -> None:
        self.loop = loop
        self.thread = thread
        self.routers: dict[DeploymentID, Router] = {}
        self.snapshot: dict[str, Any] = {"deployments": {}, "routes": {}}
        self.version = -1
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._watch: asyncio.Task[None] | None = None
        self._report: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._controller: Any = None
        self.caller_id = uuid.uuid4().hex
        self.controller_reachable = False
        self.secret: bytes | None = None  # read from the cluster before the first snapshot
        self.link: Link | None = None
        self._data_path: dict[str, Any] | None = None

    def router(self, dep: DeploymentID) -> Router:
        """The router for ``dep``; call on this context's loop."""
        r = self.routers.get(dep)
        if r is None:
            r = self.routers[dep] = Router(dep)
            r.link = self.link
            r.on_starved = self._wake.set  # report at once: the controller scales from zero
            info = self.snapshot["deployments"].get(dep.key())
            if info is not None:
                r.update(info)
            self.start_watch()
        return r

    def start_watch(self) -> None:
        if self._watch is None:
            self._watch = self.loop.create_task(self._watch_loop())
            self._report = self.loop.create_task(self._report_loop())

    async def _report_loop(self) -> None:
        """Tell the controller this caller's demand per deployment, for autoscaling."""
        last: dict[str, int] = {}
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), REPORT_INTERVAL_S)
            except TimeoutError:
                pass
            self._wake.clear()
            demand = {dep.key(): r.demand() for dep, r in self.routers.items()}
            if demand == last and not any(demand.values()):
                continue  # idle and already said so
            controller = self._controller
            if controller is None:
                continue
            try:
                await asyncio.wait_for(controller.report_demand(self.caller_id, demand), 2.0)
                last = demand
            except asyncio.CancelledError:
                raise
            except Exception:  # the controller is away; the next report will do
                pass

    async def _watch_loop(self) -> None:
        controller = None
        while True:
            try:
                if self.secret is None:
                    self.secret = await self.loop.run_in_executor(None, ray_seam.data_path_secret)
                if controller is None:
                    controller = await self.loop.run_in_executor(None, ray_seam.get_controller)
                    if controller is None:
                        raise LookupError("controller not found")
                    self._controller = controller
                version, snapshot = await asyncio.wait_for(controller.listen(self.version, LISTEN_TIMEOUT_S),
                                                           LISTEN_TIMEOUT_S + 10)
                self.controller_reachable = True
                if version != self.version:
                    self.apply(version, snapshot)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep the last snapshot and try again
                if self.controller_reachable:
                    log.warning("controller unreachable, serving from the last known replica sets: %s", e)
                self.controller_reachable = False
                controller = None
                await asyncio.sleep(0.5)

    def apply(self, version: int, snapshot: dict[str, Any]) -> None:
        data_path = snapshot.get("data_path", {})
        if data_path != self._data_path and self.secret is not None:
            self.link = Link(self.secret, data_path.get("max_frame_bytes", wire.DEFAULT_MAX_FRAME),
                             tls.client_context(data_path))
            self._data_path = data_path
            for router in self.routers.values():
                router.link = self.link
        self.version, self.snapshot = version, snapshot
        for key, info in snapshot["deployments"].items():
            r = self.routers.get(DeploymentID.from_key(key))
            if r is not None:
                r.update(info)
        for dep, r in self.routers.items():
            if dep.key() not in snapshot["deployments"]:
                r.update({"replicas": [], "max_ongoing": r.max_ongoing, "max_queued": r.max_queued, "idempotent": r.idempotent})
        for fn in self.listeners:
            fn(snapshot)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._report is not None:
            self._report.cancel()
            self._report = None
        self._controller = None
        self.routers.clear()
        self.snapshot = {"deployments": {}, "routes": {}}
        self.version = -1


_ctx: CallerContext | None = None


def install(loop: asyncio.AbstractEventLoop) -> CallerContext:
    """Use ``loop`` (a replica's or proxy's) for this process's handles."""
    global _ctx
    if _ctx is None or _ctx.loop is not loop:
        _ctx = CallerContext(loop)
    return _ctx


def get() -> CallerContext:
    """This process's context; a driver gets a background loop thread on first use."""
    global _ctx
    if _ctx is None:
        thread = LoopThread("serve_core-handles")
        _ctx = CallerContext(thread.loop, thread)
    return _ctx


def reset() -> None:
    """Forget routers and snapshot (after serve.shutdown in a driver)."""
    if _ctx is not None:
        _ctx.loop.call_soon_threadsafe(_ctx.close)
