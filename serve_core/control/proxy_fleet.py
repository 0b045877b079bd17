"""The controller's proxies: one per alive node (or the head only, or none), started,
re-adopted after a controller restart, replaced when they die, reported in `status`.

Plain mutable state owned by the controller and driven from its loop; ``on_change`` asks
the controller for a checkpoint (the proxies' names are part of it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from serve_core import ray_seam
from serve_core.control.clock import Clock
from serve_core.data.proxy import ProxyActor

log = logging.getLogger("serve_core.control.controller")
NODE_CHECK_PERIOD_S = 1.0
MISSING = {"state": "STARTING", "host": "", "port": 0, "pid": 0, "metrics_port": 0, "current": False}


class ProxyFleet:
    def __init__(self, http_options: dict[str, Any], on_change: Callable[[], None],
                 on_start: Callable[[str], None] = lambda node_id: None, cluster: Any = None,
                 clock: Clock | None = None) -> None:
        self.http_options = http_options
        self.cluster = cluster or ray_seam  # or a fake of it (tests)
        self.clock = clock or Clock()
        self.on_change = on_change
        self.on_start = on_start  # a proxy actor was placed on this node
        self.node_info: list[dict[str, Any]] = []  # every alive node, as of the last check
        self.proxies: dict[str, dict[str, Any]] = {}  # node id -> name, handle, state, ready info
        self.errors: dict[str, str] = {}  # node id -> why its last proxy failed
        self.nodes: set[str] | None = None  # nodes that should run a proxy; None until known
        self.stopping = False
        self._last_check = 0.0

    def checkpoint(self) -> dict[str, str]:
        return {n: p["name"] for n, p in self.proxies.items()}

    def restore(self, names: dict[str, str]) -> None:
        for node_id, name in names.items():
            handle = self.cluster.get_proxy(name)
            if handle is not None:
                self.proxies[node_id] = {"name": name, "handle": handle, "state": "STARTING"}
                asyncio.get_event_loop().create_task(self._watch(node_id))

    async def reconcile(self) -> None:
        """At most once per NODE_CHECK_PERIOD_S: a proxy on every node that should have one."""
        if self.clock.monotonic() - self._last_check <= NODE_CHECK_PERIOD_S or self.http_options.get("location") == "Disabled":
            return
        self._last_check = self.clock.monotonic()
        nodes = self.node_info = await asyncio.get_event_loop().run_in_executor(None, self.cluster.alive_nodes)
        if self.http_options.get("location") == "HeadOnly":
            nodes = [n for n in nodes if n["is_head"]]
        alive = {n["node_id"] for n in nodes}
        self.nodes = alive  # every one of them should have a healthy proxy
        for node_id in list(self.proxies):
            if node_id not in alive:
                self.cluster.kill(self.proxies.pop(node_id)["handle"])
                self.on_change()
        for node_id in [n for n in self.errors if n not in alive]:
            del self.errors[node_id]  # the node is gone (a restarted node comes back with a new id)
        for n in nodes:
            if n["node_id"] not in self.proxies:
                self._start(n)

    def _start(self, node: dict[str, Any]) -> None:
        name = f"SERVE_CORE_PROXY:{node['node_id'][:16]}"
        opts = dict(self.http_options)
        labels = node.get("labels", {})
        if ray_seam.PROXY_PORT_LABEL in labels:
            opts["port"] = int(labels[ray_seam.PROXY_PORT_LABEL])
        if ray_seam.PROXY_HOST_LABEL in labels:
            opts["host"] = labels[ray_seam.PROXY_HOST_LABEL]
        stale = self.cluster.get_actor(name)
        if stale is not None:
            # Not ours (restored ones are already in self.proxies): it may listen with
            # other options. Replace it once its name is free.
            self.cluster.kill(stale)
            return
        handle = self.cluster.start_proxy(ProxyActor, name, node["node_id"], opts)
        self.on_start(node["node_id"])
        self.proxies[node["node_id"]] = {"name": name, "handle": handle, "state": "STARTING", "ip": node["ip"]}
        asyncio.get_event_loop().create_task(self._watch(node["node_id"]))
        self.on_change()

    async def _watch(self, node_id: str) -> None:
        """Mark the proxy healthy once ready, then watch it until it dies (or is no longer
        this node's) and let the next check start a new one at once."""
        p = self.proxies[node_id]
        try:
            p.update(await p["handle"].ready())
            p["state"] = "HEALTHY"
            self.errors.pop(node_id, None)
            await p["handle"].until_dead(lambda: self.proxies.get(node_id) is p)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            if not self.stopping and self.errors.get(node_id) != msg:
                log.warning("proxy on node %s failed or died: %s", node_id[:8], msg)
            self.errors[node_id] = msg
        if self.proxies.get(node_id) is p:
            del self.proxies[node_id]
            self._last_check = 0.0

    async def status(self, version: int) -> dict[str, dict[str, Any]]:
        out = {
            n: {"state": p["state"], "host": p.get("host", ""), "port": p.get("port", 0), "pid": p.get("pid", 0),
                "metrics_port": p.get("metrics_port", 0), "current": await self._current(p, version)}
            for n, p in list(self.proxies.items())  # a proxy may start while this awaits
        }
        if self.nodes is None and self.http_options.get("location") != "Disabled":
            out.setdefault("unknown", dict(MISSING))  # nodes not listed yet: not ready
        for n in self.nodes or ():
            out.setdefault(n, dict(MISSING))
        for n, err in self.errors.items():
            if self.nodes is not None and n not in self.nodes:
                continue  # its node left the cluster after the proxy failed: nothing to report
            if out.get(n, {}).get("state") != "HEALTHY":
                out[n] = {**out.get(n, MISSING), "state": "FAILED", "message": err, "current": False}
        return out

    async def _current(self, p: dict[str, Any], version: int) -> bool:
        """Has this proxy seen the latest published version?"""
        if p["state"] != "HEALTHY":
            return False
        try:
            return bool(await asyncio.wait_for(p["handle"].version(), 2.0) >= version)
        except Exception:
            return False

    def metric_targets(self) -> list[str]:
        return [f"{p['host']}:{p['metrics_port']}" for p in self.proxies.values() if p.get("metrics_port")]

    def kill_all(self) -> list[str]:
        """Kill every proxy; returns their actor names (to wait until they are gone)."""
        self.stopping = True
        names = [p["name"] for p in self.proxies.values()]
        for p in self.proxies.values():
            self.cluster.kill(p["handle"])
        self.proxies.clear()
        return names
