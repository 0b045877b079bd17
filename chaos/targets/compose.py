"""The docker compose cluster (compose/docker-compose.yml) as a chaos target: ``--target compose:PROJECT``.

``ComposeCluster`` implements the runner's ``Target`` (chaos.targets.base) with the Docker API (the
``docker`` package; the socket at /var/run/docker.sock) on the containers of one compose
project, found by compose's labels: the ``head`` service is node ``head``, the ``worker``
service's container N is node ``wN``. What Ray and serve_core run is read by serve_core's
probe (``python -m embedded_cluster.probe``, the program behind `serve-core cluster
status`) inside the head container, which prints Ray's nodes and serve_core's status with
every replica's, proxy's and the controller's pid.

| action | in compose |
|---|---|
| kill-replica, kill-proxy, kill-controller | ``kill -9 PID`` in the container of the node serve_core reports it on |
| kill-gcs | the head container killed, started again ``down_for_s`` later (GCS, controller, head proxy) |
| kill-node | the node's container killed (SIGKILL); restart-node starts it again and waits for Ray |
| partition | every packet in and out dropped (iptables): a cut cable; ``mode: freeze``: the container paused (its kernel still answers TCP) |
| netem | ``tc qdisc netem``; without the netem qdisc loss uses iptables |
| heal | unpaused, qdisc and iptables rules removed |
| cpu-burn | busy loops exec'ed in the container |

The node containers hold no NET_ADMIN. A network fault (partition's cut, netem, heal) runs in a
short-lived helper container: the node's own image, as root with only NET_ADMIN and NET_RAW, in
the node's network namespace (``network_mode: container:ID``, `docker run --network
container:ID --cap-add NET_ADMIN`), nothing else of the node shared. A held fault's helper lives
for the fault: it heals when the runner stops it (SIGTERM), or by itself shortly after the fault
should have ended, so a runner that dies leaves no cut behind. A fault without a duration is
applied by a helper that exits at once and stays until ``heal`` (which also stops any helper
still running for the node). ``SERVE_CORE_NET_HELPER_IMAGE`` names another image with sh, tc
and iptables. (chaos.targets.compose_network.)

Addresses: run inside the project's network (the opt-in compose ``chaos`` service), proxies and
Prometheus are reached at their container addresses; from the host, at the ports the
compose file publishes on 127.0.0.1. The selection and parsing logic is pure
(chaos.targets.compose_containers) and tested without Docker (tests/unit/test_chaos_compose_target.py);
the Docker API is behind chaos.targets.docker_api, so the tests give a fake of their own.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from chaos.spec.experiment import Application
from chaos.spec.schedule import PlannedFault, Snapshot
from chaos.targets.base import (
    Deploys,
    FaultOutcome,
    TargetError,
    deploy_command,
    http_status,
    json_object,
    proxy_urls_from_status,
    snapshot_from_status,
    tail,
    wait_answering,
)
from chaos.targets.compose_containers import (
    HEAD_SERVICE,
    PROMETHEUS_SERVICE,
    Container,
    endpoint,
    node_containers,
    node_names,
    running_inside,
    status_doc,
)
from chaos.targets.compose_network import NetworkFaults
from chaos.targets.docker_api import Docker, DockerAPI
from embedded_cluster.victims import controller_pid, proxy_on, replica_candidates, replica_order

PROXY_PORT, PROMETHEUS_PORT, GCS_PORT = 8000, 9090, 6379
STARTED_MARKER = "Ray runtime started"
PROBE_TIMEOUT_S = 60.0
STARTUP_WAIT_S = 240.0  # how long check() waits for a project just brought up (Ray took ~94 s here)
STARTUP_POLL_S, STARTUP_SAY_EVERY_S = 3.0, 15.0
KILL_WAIT_S = 10.0
START_TIMEOUT_S = 120.0
BURN = "import time, sys\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass"


class ComposeCluster(Deploys, NetworkFaults):
    """The containers of compose project ``project``, driven through the Docker API."""

    python = "python"  # the image's interpreter

    def __init__(self, project: str, backend: str = "serve_core", docker: Docker | None = None,
                 get: Callable[[str], int | None] = http_status, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 hostname: str | None = None, wait: Callable[[float], Any] | None = None,
                 say: Callable[[str], None] = lambda m: print(f"[chaos] {m}", file=sys.stderr, flush=True)) -> None:
        self.project, self.backend = project, backend
        self.say = say
        self.docker: Docker = docker or DockerAPI()
        self.get, self.sleep, self.monotonic, self.wall = get, sleep, monotonic, wall
        self.hostname = socket.gethostname() if hostname is None else hostname
        self.description = f"compose:{project}"
        self._stop = threading.Event()  # set by interrupt(): held faults end now
        self._wait = wait or self._stop.wait  # how a held fault waits (returns early on interrupt)
        self._deployed: tuple[Application, str] | None = None

    # -- reading --

    def containers(self) -> list[Container]:
        found = self.docker.containers(self.project)
        if not any(c.service == HEAD_SERVICE for c in found):
            raise TargetError(f"cannot find compose project {self.project!r}", "no `head` container has its label",
                              f"bring it up: docker compose -p {self.project} -f compose/docker-compose.yml up -d "
                              "--scale worker=2 (or pass --target compose:PROJECT of a running one)")
        return found

    def nodes(self, containers: list[Container] | None = None) -> dict[str, Container]:
        return node_containers(containers if containers is not None else self.containers())

    def _inside(self, containers: list[Container]) -> bool:
        return running_inside(containers, self.hostname)

    def probe(self, nodes: dict[str, Container]) -> tuple[dict[str, Any] | None, str]:
        """serve_core's probe in the head container: (its view, "") or (None, why not)."""
        head = nodes.get("head")
        if head is None or not head.running:
            return None, f"the head container is {head.status if head else 'missing'}"
        r = self.docker.exec(head, ["python", "-m", "embedded_cluster.probe", "--address",
                                    f"{head.address}:{GCS_PORT}"], PROBE_TIMEOUT_S)
        doc = json_object(r.stdout)
        if r.code is None:
            return None, f"the probe did not answer within {PROBE_TIMEOUT_S:.0f}s"
        if doc is None or "error" in doc:
            return None, str((doc or {}).get("error") or tail(r.stderr or r.stdout) or f"probe exit {r.code}")
        return doc, ""

    def status(self) -> dict[str, Any]:
        nodes = self.nodes()
        view, error = self.probe(nodes)
        return status_doc(nodes, view, error)

    def check(self) -> Snapshot:
        """The cluster's snapshot once it answers. A project just brought up (`up -d` returns
        in seconds; Ray and serve_core take a minute or more) is waited for, with progress,
        up to STARTUP_WAIT_S; a stopped container fails at once."""
        started, said = self.monotonic(), -math.inf
        while True:
            doc = self.status()
            snap = None if doc.get("ray_error") else snapshot_from_status(doc, self.backend)
            stopped = [n for n, c in self.nodes().items() if not c.running]
            if stopped:
                raise TargetError(f"compose project {self.project!r} is not whole", f"node(s) {', '.join(stopped)} are down",
                                  f"start them (docker compose -p {self.project} up -d --scale worker=N) before the experiment")
            why = str(doc["ray_error"]) if snap is None else ", ".join(
                f"node {n.name} has not joined Ray" for n in snap.nodes if not n.alive)
            if not why:
                return snap  # type: ignore[return-value]  # why is empty only with a snapshot
            waited = self.monotonic() - started
            if waited >= STARTUP_WAIT_S:
                raise TargetError(f"compose project {self.project!r} is up but Ray does not answer",
                                  f"still not after {STARTUP_WAIT_S:.0f}s: {why}",
                                  f"check the head: docker compose -p {self.project} logs head")
            if waited - said >= STARTUP_SAY_EVERY_S:
                said = waited
                self.say(f"compose project {self.project!r} is starting ({tail(why, 120)}); waiting up to "
                         f"{STARTUP_WAIT_S:.0f}s, {waited:.0f}s so far")
            self.sleep(STARTUP_POLL_S)

    def snapshot(self) -> Snapshot:
        return snapshot_from_status(self.status(), self.backend)

    # -- deploying and addresses --

    def deploy(self, app: Application, backend: str) -> dict[str, Any]:
        head = self.nodes().get("head")
        assert head is not None
        argv = deploy_command(app, backend, python="python")
        t = self.monotonic()
        r = self.docker.exec(head, argv, app.ready_timeout_s)
        if r.code != 0:
            cause = "timed out" if r.code is None else tail(r.stderr or r.stdout) or f"exit {r.code}"
            raise TargetError(f"deploying {app.deploys(backend)} with {backend} failed", cause,
                              f"run it by hand: docker exec {head.name} {' '.join(argv)}")
        self._deployed, self.backend = (app, backend), backend
        return {"argv": ["docker", "exec", head.name, *argv], "output": tail(r.stdout, 2000),
                "took_s": self.monotonic() - t}

    def wait_ready(self, urls: list[str], route: str, timeout_s: float) -> None:
        wait_answering(self, urls, route, timeout_s, f"check the replicas: docker compose -p {self.project} logs head worker")

    def proxy_urls(self, backend: str, which: list[str]) -> list[str]:
        containers = self.containers()
        nodes, inside = self.nodes(containers), self._inside(containers)
        view, error = self.probe(nodes)
        doc = status_doc(nodes, view, error)
        urls = []
        for url in proxy_urls_from_status(doc, backend, which):
            host, _, _ = url.removeprefix("http://").rpartition(":")
            c = next((c for c in nodes.values() if c.address == host), None)
            where = endpoint(c, PROXY_PORT, inside) if c is not None else None
            if where:
                urls.append(f"http://{where}")
        if not urls:
            raise TargetError(f"no proxy for {backend} on {', '.join(which)}",
                              error or "serve_core reports none there (or none is published)",
                              "deploy the application first, or choose other load.proxies")
        return urls

    def prometheus_url(self) -> str:
        if os.environ.get("SERVE_CORE_COMPOSE_PROMETHEUS_URL"):
            return os.environ["SERVE_CORE_COMPOSE_PROMETHEUS_URL"]
        containers = self.containers()
        prom = next((c for c in containers if c.service == PROMETHEUS_SERVICE and c.running), None)
        where = endpoint(prom, PROMETHEUS_PORT, self._inside(containers)) if prom else None
        if not where:
            raise TargetError(f"compose project {self.project!r} has no reachable Prometheus",
                              "its prometheus container is not running (or not published)",
                              f"docker compose -p {self.project} up -d prometheus")
        return f"http://{where}"

    def processes(self) -> list[Any]:
        """Every process of the project's running containers as this host sees them, by cgroup
        (chaos.targets.processes.Proc; node: head, w1, ... or the service's name)."""
        from chaos.targets.processes import container_processes

        containers = self.containers()
        if self._inside(containers):
            raise TargetError("cannot see the containers' processes", "the runner runs inside a container of "
                              "the project", "run the chaos runner on the host to sample resources")
        return container_processes({c.id: c.node or c.service for c in containers if c.running and not c.oneoff})

    @property
    def load_metrics_host(self) -> str:
        """Where the load generator's metrics listen: in a container on the compose network (the
        opt-in runner), on its interfaces, for Prometheus; on the host, on loopback only."""
        try:
            return "0.0.0.0" if self._inside(self.containers()) else "127.0.0.1"
        except TargetError:
            return "127.0.0.1"

    def add_scrape_targets(self, endpoints: list[str]) -> None:
        """Have Prometheus scrape the load generator, when it runs where Prometheus reaches it."""
        directory = os.environ.get("SERVE_CORE_COMPOSE_TARGETS_DIR")
        reachable = [e for e in endpoints if not e.startswith(("127.", "localhost"))]
        if directory and os.path.isdir(directory) and reachable:
            path = os.path.join(directory, "loadgen.json")
            with open(f"{path}.tmp", "w") as f:
                json.dump([{"targets": reachable, "labels": {"component": "loadgen"}}], f)
            os.replace(f"{path}.tmp", path)

    # -- faults --

    def inject(self, fault: PlannedFault) -> FaultOutcome:
        handlers: dict[str, Callable[[PlannedFault], tuple[dict[str, Any], dict[str, Any]]]] = {
            "kill-replica": self._kill_replica, "kill-proxy": self._kill_proxy,
            "kill-controller": self._kill_controller, "kill-gcs": self._kill_gcs, "kill-node": self._kill_node,
            "restart-node": self._restart_node, "partition": self._partition, "netem": self._netem,
            "heal": self._heal, "cpu-burn": self._cpu_burn,
        }
        if fault.action == "redeploy":
            return self._redeploy()
        if fault.action == "deploy":
            return self._apply_config(str(fault.args["config"]))
        handler = handlers.get(fault.action)
        if handler is None:
            return FaultOutcome(False, error=f"{fault.action} is not supported on compose")
        started = self.wall()
        try:
            target, detail = handler(fault)
        except TargetError as e:
            return FaultOutcome(False, error=str(e), argv=[fault.action])
        except Exception as e:  # the Docker API's errors
            return FaultOutcome(False, error=f"{fault.action}: {type(e).__name__}: {e}", argv=[fault.action])
        ended = self.wall()
        doc = {"fault": fault.action, "target": target, "started": started, "ended": ended, "detail": detail}
        return FaultOutcome(True, doc, started, ended, argv=[fault.action])

    def interrupt(self) -> None:
        self._stop.set()

    def _view(self) -> tuple[dict[str, Container], dict[str, Any], dict[str, str]]:
        nodes = self.nodes()
        view, error = self.probe(nodes)
        if view is None:
            raise TargetError("cannot see serve_core's processes", error, "check the head container")
        return nodes, view, node_names(view, nodes)

    def _node(self, name: str | None, nodes: dict[str, Container] | None = None) -> Container:
        nodes = nodes if nodes is not None else self.nodes()
        if not name or name not in nodes:
            raise TargetError(f"no node {name!r} in compose project {self.project!r}", f"it has {', '.join(nodes)}",
                              "use head or wN with N up to --scale worker=N")
        return nodes[name]

    def _kill_pid(self, c: Container, pid: int, what: str) -> None:
        r = self.docker.exec(c, ["kill", "-9", str(pid)], 20)
        if r.code != 0:
            raise TargetError(f"cannot kill the {what}", tail(r.stderr or r.stdout) or f"exit {r.code}",
                              "the process may have died already; check the container")
        deadline = self.monotonic() + KILL_WAIT_S
        while self.monotonic() < deadline and self.docker.exec(c, ["kill", "-0", str(pid)], 10).code == 0:
            self.sleep(0.1)

    def _kill_replica(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        nodes, view, names = self._view()
        candidates = replica_candidates(view, names, self.backend, fault.app, fault.deployment, fault.node)
        if not candidates:
            raise TargetError("no running replica to kill", f"none matches {fault.target or 'anything'}",
                              "check the deployment's replicas (python -m embedded_cluster.probe in the head)")
        for chosen in replica_order(candidates, fault.seed):  # the view may be stale: a stopped replica is gone
            try:
                self._kill_pid(self._node(chosen["node"], nodes), chosen["pid"], f"replica {chosen['replica_id']}")
                return chosen, {"container": nodes[chosen["node"]].name}
            except TargetError as e:
                last = e
        raise last

    def _kill_proxy(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        nodes, view, names = self._view()
        node = fault.node or ""
        proxy = proxy_on(view, names, node, self.backend)
        if proxy is None:
            raise TargetError(f"no proxy runs on node {node}", "serve_core reports none there",
                              "deploy an application first (proxies start with it)")
        self._kill_pid(self._node(node, nodes), proxy["pid"], f"proxy on {node}")
        return {"node": node}, proxy

    def _kill_controller(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        nodes, view, _ = self._view()
        pid = controller_pid(view, self.backend)
        if not pid:
            raise TargetError("no controller to kill", view.get("serve_error") or "Ray reports none",
                              "deploy an application first")
        self._kill_pid(self._node("head", nodes), pid, "controller")
        return {"node": "head"}, {"pid": pid}

    def _kill_gcs(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        down_for = float(fault.args.get("down_for_s", 5.0))
        head = self._node("head")
        killed = self.monotonic()
        self._kill_container(head)
        self._hold(down_for - (self.monotonic() - killed))
        self._start_container(self._node("head"))
        return {"node": "head"}, {"container": head.name, "relaunched": "head-container",
                                  "down_s": round(self.monotonic() - killed, 3)}

    def _kill_node(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        c = self._node(fault.node)
        self._kill_container(c)
        return {"node": fault.node}, {"container": c.name}

    def _restart_node(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        c = self._node(fault.node)
        if c.status == "paused":
            self.docker.unpause(c)
        if c.status in ("running", "paused", "restarting"):
            self._kill_container(c)
        took = self._start_container(self._node(fault.node))
        return {"node": fault.node}, {"container": c.name, "started_in_s": round(took, 3)}

    def _kill_container(self, c: Container) -> None:
        if c.status == "paused":
            self.docker.unpause(c)
        try:
            self.docker.kill(c)
        except Exception as e:  # not running: fine
            if "is not running" not in str(e):
                raise
        deadline = self.monotonic() + KILL_WAIT_S
        while self.monotonic() < deadline:
            now = self._refresh(c)
            if now is None or not now.running:
                return
            self.sleep(0.1)

    def _start_container(self, c: Container) -> float:
        """Start the container and wait until its `ray start` says Ray runs; the seconds it took."""
        since, t = self.wall() - 1.0, self.monotonic()
        self.docker.start(c)
        while self.monotonic() - t < START_TIMEOUT_S:
            if STARTED_MARKER in self.docker.logs_since(c, since):
                return self.monotonic() - t
            now = self._refresh(c)
            if now is not None and now.status in ("exited", "dead") and self.monotonic() - t > 5.0:
                break
            self.sleep(0.5)
        raise TargetError(f"node {c.node} did not start", f"no '{STARTED_MARKER}' in its log after "
                          f"{self.monotonic() - t:.0f}s", f"docker logs {c.name}")

    def _refresh(self, c: Container) -> Container | None:
        return next((x for x in self.docker.containers(self.project) if x.id == c.id), None)

    def _hold(self, seconds: float) -> None:
        if seconds > 0 and not self._stop.is_set():
            self._wait(seconds)

    def _cpu_burn(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        c = self._node(fault.node)
        cores, for_s = int(fault.args.get("cores") or 1), float(fault.duration_s or 0.0)
        threads = [threading.Thread(target=self.docker.exec, args=(c, ["python", "-c", BURN, str(for_s)], for_s + 30))
                   for _ in range(cores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"node": fault.node}, {"container": c.name, "cores": cores, "for_s": for_s}

    def run_on_cluster(self, argv: list[str], timeout_s: float) -> tuple[int | None, str, str, list[str]]:
        head = self._node("head")
        r = self.docker.exec(head, argv, timeout_s)
        return r.code, r.stdout, r.stderr, ["docker", "exec", head.name, *argv]
