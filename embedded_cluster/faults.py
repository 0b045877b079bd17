"""Process faults on the embedded cluster: the GCS, a whole node, a replica, a proxy, the
controller, and CPU burn (the command line is in ``fault_commands``).

Every fault acts on processes of this cluster by pid, never by name: nodes as the state
file records them (checked against the recorded start time), and serve_core's replicas,
proxies and controller by the pid serve_core reports, checked to descend from one of the
cluster's nodes.

What Ray 2.60 does when the head's GCS dies (checked here): the head's `ray start --block`
notices that its gcs_server exited (within about a second), prints the tail of its log and
kills the rest of the head node (raylet, its workers: serve_core's controller and the
head's proxy), then exits. So a GCS relaunch on this cluster is a restart of the head
node with its original arguments, ports, token and ``RAY_REDIS_ADDRESS``: the new GCS
loads the cluster's tables from Redis, the workers' raylets (which wait up to
``gcs_rpc_server_reconnect_timeout_s``, 60 s by default, for it) reconnect, and the
controller restarts from its checkpoint. Should the head's `ray start` survive (another
Ray version), kill-gcs relaunches the gcs_server alone with its own command line and
environment, as read from /proc before the kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from embedded_cluster import processes, ray_nodes, victims
from embedded_cluster.errors import LocalClusterError
from embedded_cluster.state import ClusterState, ProcessRecord

HEAD_EXIT_WAIT_S = 10.0  # how long kill-gcs waits for the head's `ray start` to notice
REJOIN_WATCH_S = 12.0  # how long a healed node is watched for its `ray start` exiting (declared dead)
START_TIMEOUT_S = 90.0
BOOTSTRAP_FILE = "ray_current_cluster"  # where `ray start` records the address it started


# -- the faults --------------------------------------------------------------------------------


def kill_node(state: ClusterState, name: str) -> int:
    """SIGKILL the node's `ray start`, its process group and every descendant; returns how
    many processes were signalled."""
    targets = _signal_node(state, name, signal.SIGKILL)
    processes.wait_until(lambda: not any(processes.is_ours(p, t) for p, t in targets.items()), 5.0, 0.05)
    return len(targets)


def freeze_node(state: ClusterState, name: str) -> int:
    """SIGSTOP every process of the node (a hung machine: its kernel still answers TCP, nothing
    above it does); returns how many were stopped. thaw_node resumes them."""
    return len(_signal_node(state, name, signal.SIGSTOP))


def thaw_node(state: ClusterState, name: str) -> int:
    """SIGCONT every process of the node (harmless when none is stopped)."""
    return len(_signal_node(state, name, signal.SIGCONT))


def is_frozen(state: ClusterState, name: str) -> bool:
    """Whether any process of the node is stopped (freeze_node)."""
    record = _node_record(state, name)
    children = {c["pid"]: c["start_time"] for c in record.children.values()}
    return processes.any_stopped(processes.collect({record.pid: record.start_time, **children}))


def rejoin(state: ClusterState, name: str, watch_s: float = REJOIN_WATCH_S) -> bool:
    """After the node was cut off or frozen: start it again if Ray declared it dead meanwhile.

    Ray declares a node dead when it misses its health checks (about 6 s here), and a node
    declared dead never rejoins: when it hears from the GCS again its raylet exits, and its
    `ray start --block` with it. On a real cluster a supervisor brings it back (systemd, a
    Kubernetes pod's restart, compose's restart policy); here nothing would, and every later
    fault aimed at the node would fail. So this watches the node's `ray start` for
    ``watch_s`` and starts the node again if it exits. True when it did.
    """
    record = _node_record(state, name)
    if not processes.wait_until(lambda: not processes.alive(record), watch_s, 0.2):
        return False
    restart_node(state, name)
    return True


def _signal_node(state: ClusterState, name: str, sig: signal.Signals) -> dict[int, int]:
    """Send ``sig`` to the node's `ray start`, its process group and every descendant."""
    record = _node_record(state, name)
    leaders = {record.pid: record.start_time}
    children = {c["pid"]: c["start_time"] for c in record.children.values()}
    targets = {p: t for p, t in processes.collect({**children, **leaders}).items() if processes.is_ours(p, t)}
    for pid in targets:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return targets


def restart_node(state: ClusterState, name: str) -> ProcessRecord:
    """Stop the node if any of it runs, start it with the arguments `up` gave it, wait
    until it has started, record it."""
    record = _node_record(state, name)
    children = {c["pid"]: c["start_time"] for c in record.children.values()}
    processes.stop_pids({record.pid: record.start_time}, children, timeout_s=5.0)
    node = state.plan.node(name)
    if node.role == "head":
        # `ray start --head` refuses to start when the address its temp dir last recorded
        # is still named by a local process's --gcs-address (the workers' raylets are):
        # forget it, as a restarted head pod or container would have.
        try:
            os.unlink(os.path.join(state.ray_temp_dir(name), BOOTSTRAP_FILE))
        except FileNotFoundError:
            pass
    offset = _size(record.log)
    new = ray_nodes.start_node(state, node, ray_nodes.cluster_env(state))
    state.add(new)
    state.save()
    ray_nodes.wait_started(new, START_TIMEOUT_S, offset)
    state.save()
    return new


def kill_gcs(state: ClusterState, down_for_s: float, log=print) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """SIGKILL the head's gcs_server, wait ``down_for_s`` from the kill, relaunch. Returns
    what happened (``relaunched``: "head-node" or "gcs_server")."""
    head = _node_record(state, state.plan.head.name)
    gcs = _gcs_child(head)
    if gcs is None:
        raise LocalClusterError("no gcs_server runs on the head", f"none among the descendants of pid {head.pid}",
                                "restart the head with `serve-core cluster fault restart-node --node head`")
    pid, started = gcs
    argv, env = _cmdline(pid), _environ(pid)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    log(f"killed gcs_server (pid {pid})")
    head_exited = processes.wait_until(lambda: not processes.alive(head), HEAD_EXIT_WAIT_S, 0.1)
    if head_exited:
        log(f"the head's `ray start` (pid {head.pid}) exited with it, taking the head node down")
    time.sleep(max(0.0, down_for_s - (time.monotonic() - killed_at)))
    if head_exited:
        restart_node(state, state.plan.head.name)
        how = "head-node"
    else:  # the node outlived its GCS: relaunch the gcs_server alone, as it ran
        record = processes.spawn("gcs", "gcs_server", argv, os.path.join(state.logs_dir, "gcs_server.log"), env,
                                 namespace=head.namespace, cwd=os.getcwd())
        head.children["gcs_server"] = {"pid": record.pid, "start_time": record.start_time}
        state.save()
        how = "gcs_server"
    down_s = time.monotonic() - killed_at
    log(f"relaunched ({how}) {down_s:.1f}s after the kill")
    return {"killed_pid": pid, "killed_start_time": started, "relaunched": how, "down_s": down_s}


def kill_replica(state: ClusterState, view: dict[str, Any], deployment: str | None = None, app: str | None = None,
                 node: str | None = None, seed: int | None = None, backend: str = "serve_core") -> dict[str, Any]:
    """SIGKILL one running replica (chosen with ``seed`` among those matching); returns
    what was killed."""
    names = _node_names(state, view)
    candidates = victims.replica_candidates(view, names, backend, app, deployment, node)
    if not candidates:
        wanted = ", ".join(f"{k}={v}" for k, v in (("app", app), ("deployment", deployment), ("node", node)) if v)
        raise LocalClusterError("no running replica to kill", f"none matches {wanted or 'anything'}",
                                "check `serve-core cluster status` for deployments and the nodes of their replicas")
    for target in victims.replica_order(candidates, seed):  # the view may be stale: a replica a rollout or downscale just stopped is gone
        try:
            _kill_serve_process(state, target["pid"], f"replica {target['replica_id']}")
            return target
        except LocalClusterError as e:
            last = e
    raise last


def kill_proxy(state: ClusterState, view: dict[str, Any], node: str, backend: str = "serve_core") -> dict[str, Any]:
    proxy = victims.proxy_on(view, _node_names(state, view), node, backend)
    if proxy is not None:
        _kill_serve_process(state, proxy["pid"], f"proxy on {node}")
        return proxy
    raise LocalClusterError(f"no proxy runs on node {node}", "serve_core reports none there",
                            "deploy an application first (proxies start with it) and check `serve-core cluster status`")


def kill_controller(state: ClusterState, view: dict[str, Any], backend: str = "serve_core") -> dict[str, Any]:
    pid = victims.controller_pid(view, backend)
    if not pid:
        raise LocalClusterError("no serve_core controller to kill", view.get("serve_error") or "Ray reports none",
                                "deploy an application first")
    return {"pid": pid, "node": _kill_serve_process(state, pid, "controller")}


def cpu_burn(state: ClusterState, node: str, cores: int, for_s: float) -> dict[str, Any]:
    """Spin ``cores`` busy processes in the node's network namespace for ``for_s`` seconds.
    The nodes share this machine's cores, so the burn slows every node; it is placed on
    ``node`` so that a containerised target (own cgroup) runs the same experiment."""
    plan_node = state.plan.node(node)
    prefix = ["ip", "netns", "exec", plan_node.namespace] if plan_node.namespace else []
    argv = prefix + [sys.executable, "-c", "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\n"
                     "while time.monotonic() < end: pass", str(for_s)]
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) for _ in range(cores)]
    for p in procs:
        p.wait()
    return {"node": node, "cores": cores, "pids": [p.pid for p in procs]}


# -- helpers -----------------------------------------------------------------------------------


def _node_record(state: ClusterState, name: str) -> ProcessRecord:
    state.plan.node(name)  # a ConfigError naming the nodes if there is no such node
    record = state.process(name)
    if record is None or record.role not in ("head", "worker"):
        raise LocalClusterError(f"node {name} has no process in the state file", state.path,
                                "bring the cluster down and up again")
    return record


def _gcs_child(head: ProcessRecord) -> tuple[int, int] | None:
    c = head.children.get("gcs_server")
    if c and processes.is_ours(c["pid"], c["start_time"]):
        return c["pid"], c["start_time"]
    if processes.alive(head):
        found = processes.find_children(head.pid, ("gcs_server",)).get("gcs_server")
        if found:
            return found["pid"], found["start_time"]
    return None


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [a.decode(errors="replace").split("=", 1) for a in f.read().split(b"\0") if b"=" in a]
    return {k: v for k, v in pairs}


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _node_names(state: ClusterState, view: dict[str, Any]) -> dict[str, str]:
    """Ray node id -> node name (by address and metrics port, as `status` matches them)."""
    by_key = {(n.address, n.ports.metrics_export): n.name for n in state.plan.nodes}
    return {n["node_id"]: by_key.get((n["address"], n["metrics_port"]), n["address"])
            for n in view.get("nodes", []) if n.get("node_id")}


def _kill_serve_process(state: ClusterState, pid: int, what: str) -> str:
    """SIGKILL ``pid`` if it descends from one of the cluster's nodes; returns the node."""
    for record in state.processes:
        if record.role in ("head", "worker") and processes.alive(record) and pid in processes.descendants(record.pid):
            _sigkill_and_wait(pid)
            return record.name
    raise LocalClusterError(f"cannot kill the {what}", f"pid {pid} is not a process of this cluster's nodes",
                            "check `serve-core cluster status`; the process may have died already")


def _sigkill_and_wait(pid: int) -> None:
    started = processes.start_time(pid)
    os.kill(pid, signal.SIGKILL)
    processes.wait_until(lambda: not processes.is_ours(pid, started), 5.0, 0.05)
