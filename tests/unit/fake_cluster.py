"""A fake of serve_core.ray_seam (the one seam to Ray): actors are objects with the typed
clients' async methods (ReplicaClient, ProxyClient), the KV store is a dict. Lets the
controller run with no Ray."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

PROXY_PORT_LABEL = "serve-core/proxy-port"
PROXY_HOST_LABEL = "serve-core/proxy-host"
_pids = itertools.count(1000)


class FakeActor:
    """An actor as the controller sees it through ray_seam's typed clients: async methods."""

    def __init__(self, cluster: FakeCluster, name: str) -> None:
        self.cluster, self.name, self.pid = cluster, name, next(_pids)
        self.dead = asyncio.Event()

    async def until_dead(self, watching: Any = None) -> None:
        await self.dead.wait()
        raise RuntimeError(f"actor {self.name} died")

    async def check_health(self) -> None:
        if self.dead.is_set():
            raise RuntimeError("dead")


class FakeReplica(FakeActor):
    """ray_seam.ReplicaClient's interface."""

    def __init__(self, cluster: FakeCluster, name: str, spec: dict[str, Any]) -> None:
        super().__init__(cluster, name)
        self.spec, self.info_, self.user_config = spec, None, spec.get("user_config")

    async def initialize(self, host: Any = None) -> dict[str, Any]:
        if self.cluster.start_gate is not None:
            await self.cluster.start_gate.wait()
        if self.spec.get("version") in self.cluster.failing_versions:
            raise RuntimeError("constructor failed: bad weights")
        self.info_ = self.info_ or {"host": "10.0.0.1", "port": self.pid, "pid": self.pid, "metrics_port": 1,
                                    "replica_id": self.spec["replica_id"],
                                    "node_id": self.cluster.placed.get(self.name) or "node-1",
                                    "version": self.spec.get("version", ""),
                                    "config_version": self.spec.get("config_version", "")}
        return self.info_

    async def info(self) -> dict[str, Any]:
        if self.info_ is None:
            return {"ready": False, "version": self.spec.get("version", ""), "config_version": self.spec.get("config_version", "")}
        return {**self.info_, "ready": True}

    async def reconfigure(self, config: Any) -> None:
        self.user_config = config

    async def drain(self, wait_loop_s: float, timeout_s: float) -> int:
        return 0


class FakeProxy(FakeActor):
    """ray_seam.ProxyClient's interface."""

    async def ready(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": 8000, "pid": self.pid, "metrics_port": 2}

    async def version(self) -> int:
        return 1 << 62  # always current


class FakeCluster:
    PROXY_PORT_LABEL = PROXY_PORT_LABEL
    PROXY_HOST_LABEL = PROXY_HOST_LABEL

    def __init__(self) -> None:
        self.kv: dict[bytes, bytes] = {}
        self.actors: dict[str, FakeActor] = {}
        self.started: list[str] = []
        self.placed: dict[str, str | None] = {}  # replica actor name -> the node it was asked to go to
        self.prestarted: list[tuple[str, int]] = []  # (node id, count) per prestart_workers call
        self.start_gate: asyncio.Event | None = None  # when set, replicas finish starting only once it is
        self.failing_versions: set[str] = set()  # replicas of these code versions fail to start
        self.nodes = ["node-1"]  # alive Ray node ids

    def kv_put(self, key: bytes, value: bytes) -> None:
        self.kv[key] = value

    def kv_get(self, key: bytes) -> bytes | None:
        return self.kv.get(key)

    def kv_del(self, key: bytes) -> None:
        self.kv.pop(key, None)

    def get_actor(self, name: str) -> FakeActor | None:
        return self.actors.get(name)

    get_replica = get_proxy = get_actor

    def actor_names(self, prefix: str) -> list[str]:
        return [n for n in self.actors if n.startswith(prefix)]

    def start_replica(self, actor_cls: type, name: str, spec: dict[str, Any], actor_options: dict[str, Any],
                      node_id: str | None = None) -> FakeReplica:
        self.started.append(name)
        self.placed[name] = node_id
        actor = self.actors[name] = FakeReplica(self, name, spec)
        return actor

    def start_proxy(self, actor_cls: type, name: str, node_id: str, http_options: dict[str, Any]) -> FakeProxy:
        actor = self.actors[name] = FakeProxy(self, name)
        return actor

    def kill(self, handle: FakeActor) -> None:
        handle.dead.set()
        self.actors.pop(handle.name, None)

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [{"node_id": n, "ip": "10.0.0.1", "is_head": n == "node-1", "labels": {}, "cpus": 2.0, "raylet_port": 1}
                for n in self.nodes]

    def prestart_workers(self, node: dict[str, Any], count: int, keep_alive_s: int) -> None:
        self.prestarted.append((node["node_id"], count))

    def node_ip(self) -> str:
        return "10.0.0.1"
