"""Idle Ray worker processes kept ready on the nodes that host replicas.

Starting an actor costs Ray a new worker process (1 to 1.5 s here, most of a cold start
from zero replicas); with an idle one waiting, it takes about 0.25 s. So the controller
asks each replica node's raylet for one spare: a bare Python worker with no user code
loaded and no resources reserved (about 60 MB of memory while idle). An actor placed on the node takes the spare, and the next pass asks for another.
Replicas with a ``runtime_env`` of their own do not match the spare and start as before.

``due`` is the pure part (which nodes need asking); ``refresh`` does the asking.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from serve_core import ray_seam

log = logging.getLogger("serve_core.control.controller")
KEEP_ALIVE_S = 3600  # an unused spare is asked for again after this
RETRY_S = 30.0  # after a raylet refused or did not answer


def spares_per_node() -> int:
    """``SERVE_CORE_WARM_WORKERS`` (default 1; 0 turns spares off)."""
    raw = os.environ.get("SERVE_CORE_WARM_WORKERS", "1")
    try:
        return max(0, int(raw))
    except ValueError:
        log.warning("SERVE_CORE_WARM_WORKERS=%r is not a whole number; using 1", raw)
        return 1


class WarmSpares:
    def __init__(self, per_node: int, cluster: Any = None) -> None:
        self.per_node = per_node
        self.cluster = cluster or ray_seam  # or a fake of it (tests)
        self.asked: dict[str, float] = {}  # node id -> when its spares were last asked for
        self.failed: dict[str, float] = {}  # node id -> when asking last failed
        self.used: set[str] = set()  # nodes where an actor was placed since they were asked

    def placed(self, node_id: str) -> None:
        """An actor started on ``node_id``: it probably took the spare."""
        self.used.add(node_id)

    def due(self, nodes: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        if self.per_node <= 0:
            return []
        out = []
        for n in nodes:
            nid = n["node_id"]
            if n.get("cpus", 0) <= 0 or not n.get("raylet_port"):
                continue  # replicas do not go there (the embedded cluster's head)
            if now - self.failed.get(nid, -RETRY_S) < RETRY_S:
                continue
            if nid not in self.asked or nid in self.used or now - self.asked[nid] >= KEEP_ALIVE_S:
                out.append(n)
        return out

    async def refresh(self, nodes: list[dict[str, Any]], now: float) -> None:
        loop = asyncio.get_event_loop()
        for n in self.due(nodes, now):
            nid = n["node_id"]
            self.used.discard(nid)
            try:
                await loop.run_in_executor(None, self.cluster.prestart_workers, n, self.per_node, KEEP_ALIVE_S)
                self.asked[nid] = now
            except Exception as e:  # an old raylet, or one going away: cold starts are slower, nothing else
                self.failed[nid] = now
                log.info("could not keep a spare worker on node %s: %s", nid[:8], str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        known = {n["node_id"] for n in nodes}
        for nid in list(self.asked):
            if nid not in known:
                del self.asked[nid]
