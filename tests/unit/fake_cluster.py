"""A fake of serve_core.cluster (the one seam to Ray): actors are objects whose
methods return coroutines, the KV store is a dict. Lets the controller run with no Ray."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from serve_core import cluster as real_cluster

PROXY_PORT_LABEL = "serve-core/proxy-port"
PROXY_HOST_LABEL = "serve-core/proxy-host"
_pids = itertools.count(1000)


class _Method:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        async def call() -> Any:
            result = self.fn(*args, **kwargs)
            return await result if asyncio.iscoroutine(result) else result

        return call()

    def options(self, **_: Any) -> _Method:
        return self


class FakeActor:
    def __init__(self, cluster: FakeCluster, name: str) -> None:
        self.cluster, self.name, self.pid = cluster, name, next(_pids)
        self.dead = asyncio.Event()

    def __getattr__(self, method: str) -> _Method:
        if method.startswith("_") or not hasattr(type(self), "_" + method):
            raise AttributeError(method)
        return _Method(getattr(self, "_" + method))

    async def _wait_until_dead(self, timeout_s: float | None = None) -> None:
        try:
            await asyncio.wait_for(self.dead.wait(), timeout_s)
        except TimeoutError:
            return  # alive: the watcher calls again
        raise RuntimeError(f"actor {self.name} died")

    def _check_health(self) -> None:
        if self.dead.is_set():
            raise RuntimeError("dead")


class FakeReplica(FakeActor):
    def __init__(self, cluster: FakeCluster, name: str, spec: dict[str, Any]) -> None:
        super().__init__(cluster, name)
        self.spec, self.info_, self.user_config = spec, None, spec.get("user_config")

    async def _initialize(self, host: Any) -> dict[str, Any]:
        if self.cluster.start_gate is not None:
            await self.cluster.start_gate.wait()
        if self.spec.get("version") in self.cluster.failing_versions:
            raise RuntimeError("constructor failed: bad weights")
        self.info_ = self.info_ or  {"host": "10.0.0.1", "port": self.pid, "pid": self.pid, "metrics_port": 1,
                      "replica_id": self.spec["replica_id"], "node_id": "node-1",
                      "version": self.spec.get("version", ""), "config_version": self.spec.get("config_version", "")}
        return self.info_

    def _info(self) -> dict[str, Any]:
        if self.info_ is None:
            return {"ready": False, "version": self.spec.get("version", ""), "config_version": self.spec.get("config_version", "")}
        return {**self.info_, "ready": True}

    def _reconfigure(self, config: Any) -> None:
        self.user_config = config

    def _drain(self, wait_loop_s: float, timeout_s: float) -> int:
        return 0


class FakeProxy(FakeActor):
    def _ready(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": 8000, "pid": self.pid, "metrics_port": 2}

    def _version(self) -> int:
        return 1 << 62  # always current


class FakeCluster:
    PROXY_PORT_LABEL = PROXY_PORT_LABEL
    PROXY_HOST_LABEL = PROXY_HOST_LABEL
    until_dead = staticmethod(real_cluster.until_dead)  # the real watch loop, over fake actors

    def __init__(self) -> None:
        self.kv: dict[bytes, bytes] = {}
        self.actors: dict[str, FakeActor] = {}
        self.started: list[str] = []
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

    def actor_names(self, prefix: str) -> list[str]:
        return [n for n in self.actors if n.startswith(prefix)]

    def start_replica(self, name: str, spec: dict[str, Any], actor_options: dict[str, Any]) -> FakeReplica:
        self.started.append(name)
        actor = self.actors[name] = FakeReplica(self, name, spec)
        return actor

    def start_proxy(self, name: str, node_id: str, http_options: dict[str, Any]) -> FakeProxy:
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
