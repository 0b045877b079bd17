"""Which processes on this machine belong to the cluster under test, and what each one is.

The embedded cluster's are the processes in its nodes' network namespaces, the processes it
recorded (redis, prometheus, each node's `ray start`), whatever names its state directory on
the command line (a relaunched gcs_server, a node's raylet) and all their descendants. A
compose project's are the processes in its containers' cgroups, as the host sees them. Each
gets a role (controller, proxy, replica, gcs, raylet, ...) from its name and command line.
Everything but ``read_table`` and the ``*_processes`` readers is pure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HOST = "host"  # the node of a process outside every node (redis, prometheus of the embedded cluster)


@dataclass(frozen=True)
class Proc:
    pid: int
    role: str  # gcs, raylet, controller, proxy, replica, worker, redis, prometheus, dashboard, ...
    node: str  # head, w1, ... ("host" outside every node)


@dataclass(frozen=True)
class ProcRow:
    """One process as /proc shows it."""

    pid: int
    ppid: int
    name: str
    cmdline: str
    netns: int | None = None  # inode of its network namespace
    cgroup: str = ""  # /proc/PID/cgroup


class ResourceError(RuntimeError):
    """The cluster's processes could not be found."""


_TITLES = (  # a Ray worker's process title (ray::...) -> role
    (re.compile(r"SERVE_CORE_REPLICA|ServeReplica|ReplicaActor"), "replica"),
    (re.compile(r"ProxyActor|ServeProxy"), "proxy"),
    (re.compile(r"^(Serve)?Controller\b"), "controller"),
    (re.compile(r"^DashboardAgent"), "dashboard-agent"),
    (re.compile(r"^RuntimeEnvAgent"), "runtime-env-agent"),
)
_SCRIPTS = (  # a command line's part -> role
    ("dashboard/dashboard.py", "dashboard"), ("dashboard/agent.py", "dashboard-agent"),
    ("runtime_env/agent", "runtime-env-agent"), ("log_monitor.py", "log-monitor"),
    ("autoscaler/_private/monitor.py", "monitor"), ("ray.util.client.server", "ray-client-server"),
    ("workers/default_worker.py", "worker"), ("workers/setup_worker.py", "worker"),
    ("embedded_cluster.scrape_targets", "targets"), ("/ray start", "ray-start"),
)
_NAMES = {"gcs_server": "gcs", "raylet": "raylet", "redis-server": "redis", "prometheus": "prometheus"}


def role_of(name: str, cmdline: str) -> str:
    """A process's role from its name and command line (a Ray worker's from its title). Pure."""
    if name in _NAMES:
        return _NAMES[name]
    if cmdline.startswith("ray::"):
        title = cmdline[5:].split(" ", 1)[0]
        return next((role for pattern, role in _TITLES if pattern.search(title)), "worker")
    return next((role for part, role in _SCRIPTS if part in cmdline), name or "?")


def _descendants(rows: Sequence[ProcRow], placed: Mapping[int, str]) -> dict[int, str]:
    """``placed`` and every descendant of a placed process, each on its nearest placed ancestor's node."""
    children: dict[int, list[int]] = {}
    for r in rows:
        children.setdefault(r.ppid, []).append(r.pid)
    out = dict(placed)
    todo = list(placed)
    while todo:
        pid = todo.pop()
        for c in children.get(pid, []):
            if c not in out:
                out[c] = out[pid]
                todo.append(c)
    return out


def _procs(rows: Sequence[ProcRow], nodes: Mapping[int, str], exclude: Iterable[int] = ()) -> list[Proc]:
    skip = set(exclude)
    return [Proc(r.pid, role_of(r.name, r.cmdline), nodes[r.pid]) for r in rows if r.pid in nodes and r.pid not in skip]


def place_embedded(rows: Sequence[ProcRow], state_dir: str, roots: Mapping[int, str], netns_nodes: Mapping[int, str],
                   exclude: Iterable[int] = ()) -> list[Proc]:
    """The embedded cluster's processes among ``rows``: those in a node's network namespace
    (``netns_nodes``: inode -> node), the recorded ones (``roots``: pid -> node), those whose
    command line names the state directory (``<state_dir>/ray/<node>/...`` places it on that node),
    and their descendants. Pure."""
    base = state_dir.rstrip("/") + "/"
    ray_dir = re.compile(re.escape(base + "ray/") + r"([^/\s]+)")
    placed: dict[int, str] = {}
    for r in rows:
        if r.netns is not None and r.netns in netns_nodes:
            placed[r.pid] = netns_nodes[r.netns]
        elif r.pid in roots:
            placed[r.pid] = roots[r.pid]
        elif (m := ray_dir.search(r.cmdline)) is not None:
            placed[r.pid] = m[1]
        elif base in r.cmdline:
            placed[r.pid] = HOST
    return _procs(rows, _descendants(rows, placed), exclude)


def place_containers(rows: Sequence[ProcRow], containers: Mapping[str, str], exclude: Iterable[int] = ()) -> list[Proc]:
    """The processes whose cgroup names one of ``containers`` (full container id -> node). Pure."""
    placed = {r.pid: node for r in rows for cid, node in containers.items() if cid and cid in r.cgroup}
    return _procs(rows, placed, exclude)


def read_table(netns: bool = False, cgroup: bool = False) -> list[ProcRow]:
    """Every process on this machine (with its network namespace and cgroup when asked)."""
    import psutil

    rows = []
    for p in psutil.process_iter(["pid", "ppid", "name", "cmdline"]):
        info = p.info
        ns, cg = None, ""
        try:
            if netns:
                ns = os.stat(f"/proc/{info['pid']}/ns/net").st_ino
            if cgroup:
                with open(f"/proc/{info['pid']}/cgroup") as f:
                    cg = f.read()
        except OSError:
            continue  # gone, or not ours to see
        rows.append(ProcRow(int(info["pid"]), int(info["ppid"] or 0), str(info["name"] or ""),
                            " ".join(info["cmdline"] or []), ns, cg))
    return rows


def embedded_processes(status: Mapping[str, Any], rows: Sequence[ProcRow] | None = None) -> list[Proc]:
    """The processes of the embedded cluster whose `cluster status --json` is ``status``."""
    state_file = str(status.get("state_file") or "")
    if not state_file:
        raise ResourceError("the cluster status names no state file: cannot tell its processes")
    netns_nodes: dict[int, str] = {}
    for n in status.get("nodes") or []:
        if n.get("namespace"):
            try:
                netns_nodes[os.stat(f"/run/netns/{n['namespace']}").st_ino] = str(n["name"])
            except OSError:
                continue  # the namespace is gone: its processes are too
    roots = {int(p["pid"]): str(p["name"]) if p.get("role") in ("head", "worker") else HOST
             for p in status.get("processes") or [] if p.get("pid")}
    rows = read_table(netns=bool(netns_nodes)) if rows is None else rows
    return place_embedded(rows, os.path.dirname(state_file), roots, netns_nodes, exclude=[os.getpid()])


def container_processes(containers: Mapping[str, str], rows: Sequence[ProcRow] | None = None) -> list[Proc]:
    """The processes of the given containers (full id -> node) as this host sees them."""
    rows = read_table(cgroup=True) if rows is None else rows
    return place_containers(rows, containers, exclude=[os.getpid()])
