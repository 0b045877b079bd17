"""Where everything goes: node addresses, namespaces, interface names and ports. Pure.

Two modes:

- ``netns`` (root): a Linux bridge with the host side at ``10.77.0.1/24`` and one network
  namespace per node (``sc-head``, ``sc-w1``, ...) with its own address (``10.77.0.2``,
  ``10.77.0.3``, ...). Every node uses the same ports, as separate machines would, and
  its serve_core proxy binds its own address (node label ``serve-core/proxy-host``).
- ``loopback``: every node on one loopback address, ``127.0.0.2`` (`ray start` rewrites
  ``127.0.0.1`` to the machine's primary address, other 127/8 addresses it keeps; Linux
  answers on all of 127/8); each node gets its own block of Ray ports and its own proxy
  port (node label ``serve-core/proxy-port``: 8000, 8001, ...). Redis and Prometheus
  listen on ``127.0.0.1``.

Ray's node ports are fixed (not random) so that Prometheus knows where each node's
metrics are and so that nodes never collide with each other or with another cluster.
The default block (23000 + 100 per node) sits between Ray's default worker ports
(10002-19999) and the kernel's ephemeral range (32768 and up).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from serve_core.errors import ConfigError

NETNS = "netns"
LOOPBACK = "loopback"
BRIDGE = "scbr0"
SUBNET = "10.77.0"  # /24; .1 is the host side of the bridge, nodes from .2
PREFIXLEN = 24
LOOPBACK_NODE_ADDRESS = "127.0.0.2"
NAMESPACE_PREFIX = "sc-"
PORT_BLOCK = 100  # ports per node in loopback mode
WORKER_PORT_OFFSET = 10  # Ray worker processes use offsets 10..99 of the node's block
MAX_WORKERS = 60
PROXY_PORT_LABEL = "serve-core/proxy-port"  # the names serve_core.ray_seam reads
PROXY_HOST_LABEL = "serve-core/proxy-host"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,9}$")


@dataclass(frozen=True)
class PortSettings:
    """The user-chosen ports (command-line options of `cluster up`)."""

    gcs: int = 6392
    redis: int = 6391
    prometheus: int = 9391
    node_base: int = 23000
    proxy: int = 8000  # first proxy port in loopback mode (netns: serve_core's http port)


@dataclass(frozen=True)
class NodePorts:
    node_manager: int
    object_manager: int
    metrics_export: int
    dashboard_agent_listen: int
    dashboard_agent_grpc: int
    runtime_env_agent: int
    ray_client_server: int
    min_worker: int
    max_worker: int

    @classmethod
    def block(cls, base: int) -> NodePorts:
        return cls(base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6,
                   base + WORKER_PORT_OFFSET, base + PORT_BLOCK - 1)

    def fixed(self) -> dict[str, int]:
        """Every single port (not the worker range), by name."""
        d = asdict(self)
        d.pop("min_worker")
        d.pop("max_worker")
        return d


@dataclass(frozen=True)
class NodePlan:
    name: str  # "head", "w1", "w2", ...
    role: str  # "head" or "worker"
    address: str  # the node's IP address, which Ray and the proxy use
    namespace: str | None  # network namespace (netns mode)
    veth: str | None  # host-side veth interface (netns mode)
    ports: NodePorts
    proxy_port: int
    num_cpus: int
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def metrics_target(self) -> str:
        return f"{self.address}:{self.ports.metrics_export}"


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    mode: str  # NETNS or LOOPBACK
    host_address: str  # where Redis and Prometheus listen (bridge address or 127.0.0.1)
    bridge: str | None
    ports: PortSettings
    nodes: tuple[NodePlan, ...]

    @property
    def head(self) -> NodePlan:
        return self.nodes[0]

    @property
    def workers(self) -> tuple[NodePlan, ...]:
        return self.nodes[1:]

    @property
    def gcs_address(self) -> str:
        return f"{self.head.address}:{self.ports.gcs}"

    @property
    def redis_address(self) -> str:
        return f"{self.host_address}:{self.ports.redis}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host_address}:{self.ports.prometheus}"

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError("--node", name, f"no such node; this cluster has {[n.name for n in self.nodes]}")

    def listen_ports(self) -> list[tuple[str, int, str]]:
        """(address, port, what) of every port a process of this cluster listens on,
        for checking that they are free before starting (worker ranges excluded)."""
        out = [(self.host_address, self.ports.redis, "redis (--redis-port)"),
               (self.host_address, self.ports.prometheus, "prometheus (--prometheus-port)"),
               (self.head.address, self.ports.gcs, "GCS (--gcs-port)")]
        for n in self.nodes:
            out += [(n.address, p, f"{n.name} {k} (--node-port-base)") for k, p in n.ports.fixed().items()]
            out.append((n.address, n.proxy_port, f"{n.name} proxy (--proxy-port)"))
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterPlan:
        nodes = tuple(
            NodePlan(**{**n, "ports": NodePorts(**n["ports"]), "labels": dict(n.get("labels") or {})})
            for n in d["nodes"]
        )
        return cls(d["name"], d["mode"], d["host_address"], d.get("bridge"), PortSettings(**d["ports"]), nodes)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError("--name", name, "use 1 to 10 lowercase letters, digits or '-' (it is part of paths and socket names)")
    return name


def plan(name: str, workers: int, mode: str, ports: PortSettings | None = None,
         worker_cpus: int = 2, head_cpus: int = 0) -> ClusterPlan:
    """Addresses and ports of a head plus ``workers`` worker nodes."""
    check_name(name)
    ports = ports or PortSettings()
    if not 0 <= workers <= MAX_WORKERS:
        raise ConfigError("--workers", workers, f"use 0 to {MAX_WORKERS} worker nodes")
    if mode not in (NETNS, LOOPBACK):
        raise ConfigError("mode", mode, f"use {NETNS!r} or {LOOPBACK!r}")
    for what, port in (("--gcs-port", ports.gcs), ("--redis-port", ports.redis), ("--prometheus-port", ports.prometheus),
                       ("--proxy-port", ports.proxy)):
        if not 1024 <= port <= 65535:
            raise ConfigError(what, port, "use a port from 1024 to 65535")
    last_block = ports.node_base + PORT_BLOCK * ((workers + 1) if mode == LOOPBACK else 1) - 1
    if ports.node_base < 1024 or last_block > 65535:
        raise ConfigError("--node-port-base", ports.node_base, f"the node port blocks must fit in 1024-65535 (they end at {last_block})")
    nodes = []
    for i in range(workers + 1):
        node_name, role = ("head", "head") if i == 0 else (f"w{i}", "worker")
        cpus = head_cpus if i == 0 else worker_cpus
        if mode == NETNS:
            address = f"{SUBNET}.{i + 2}"
            node = NodePlan(node_name, role, address, f"{NAMESPACE_PREFIX}{node_name}", f"scv-{node_name}",
                            NodePorts.block(ports.node_base), ports.proxy, cpus, {PROXY_HOST_LABEL: address})
        else:
            proxy = ports.proxy + i
            node = NodePlan(node_name, role, LOOPBACK_NODE_ADDRESS, None, None, NodePorts.block(ports.node_base + PORT_BLOCK * i),
                            proxy, cpus, {PROXY_PORT_LABEL: str(proxy)})
        nodes.append(node)
    host = f"{SUBNET}.1" if mode == NETNS else "127.0.0.1"
    result = ClusterPlan(name, mode, host, BRIDGE if mode == NETNS else None, ports, tuple(nodes))
    check_distinct(result)
    return result


def check_distinct(p: ClusterPlan) -> None:
    """No two listeners of the plan share a port in one network stack (options may
    overlap). Ray's servers listen on every address, so in loopback mode all of them
    share the host's stack; in netns mode each node has its own."""

    def stack(address: str) -> str:
        return address if p.mode == NETNS else "host"

    seen: dict[tuple[str, int], str] = {}
    for n in p.nodes:
        for port in range(n.ports.min_worker, n.ports.max_worker + 1):
            seen[(stack(n.address), port)] = f"{n.name} worker ports (--node-port-base)"
    for address, port, what in p.listen_ports():
        other = seen.get((stack(address), port))
        if other is not None and other != what:
            flag = what.split("(")[-1].rstrip(")")
            raise ConfigError(flag, port, f"port {port} is also used by {other}; choose another port")
        seen[(stack(address), port)] = what


def labels_arg(labels: dict[str, str]) -> str:
    """`ray start --labels` in Ray's key=value,key=value form (its JSON form is deprecated)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
