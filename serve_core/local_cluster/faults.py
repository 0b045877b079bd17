"""`serve-core cluster fault kill-gcs | kill-node | restart-node`: faults by hand.

Every fault acts on processes the state file lists, by pid (checked against the recorded
start time), never by name.

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

import argparse
import os
import signal
import time

from serve_core.local_cluster import processes, ray_nodes
from serve_core.local_cluster.errors import LocalClusterError
from serve_core.local_cluster.state import ClusterState, ProcessRecord

HEAD_EXIT_WAIT_S = 10.0  # how long kill-gcs waits for the head's `ray start` to notice
START_TIMEOUT_S = 90.0
BOOTSTRAP_FILE = "ray_current_cluster"  # where `ray start` records the address it started


def add_fault_commands(sub: argparse._SubParsersAction, common) -> None:  # type: ignore[type-arg]
    f = sub.add_parser("fault", help="inject a fault by hand: kill-gcs, kill-node, restart-node")
    fsub = f.add_subparsers(dest="fault_command", required=True)

    kg = fsub.add_parser("kill-gcs", help="SIGKILL the head's gcs_server, wait, relaunch it (Redis keeps its tables)")
    common(kg)
    kg.add_argument("--down-for", type=float, default=5.0, metavar="SECONDS",
                    help="seconds from the kill to the relaunch (default 5)")
    kg.set_defaults(handler=cmd_kill_gcs)

    kn = fsub.add_parser("kill-node", help="SIGKILL a node's whole process group (raylet, workers, proxy, replicas)")
    common(kn)
    kn.add_argument("--node", required=True, help="node name: head, w1, w2, ...")
    kn.set_defaults(handler=cmd_kill_node)

    rn = fsub.add_parser("restart-node", help="stop a node if it runs, start it again with its original arguments")
    common(rn)
    rn.add_argument("--node", required=True, help="node name: head, w1, w2, ...")
    rn.set_defaults(handler=cmd_restart_node)


def _state(ns: argparse.Namespace) -> ClusterState:
    from serve_core.local_cluster.commands import require_state  # commands imports this module
    return require_state(ns)


# -- the faults --------------------------------------------------------------------------------


def kill_node(state: ClusterState, name: str) -> int:
    """SIGKILL the node's `ray start`, its process group and every descendant; returns how
    many processes were signalled."""
    record = _node_record(state, name)
    leaders = {record.pid: record.start_time}
    children = {c["pid"]: c["start_time"] for c in record.children.values()}
    targets = {p: t for p, t in processes.collect({**children, **leaders}).items() if processes.is_ours(p, t)}
    for pid in targets:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    processes.wait_until(lambda: not any(processes.is_ours(p, t) for p, t in targets.items()), 5.0, 0.05)
    return len(targets)


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


# -- handlers ----------------------------------------------------------------------------------


def cmd_kill_gcs(ns: argparse.Namespace) -> int:
    if ns.down_for < 0:
        from serve_core.errors import ConfigError
        raise ConfigError("--down-for", ns.down_for, "give 0 or more seconds")
    kill_gcs(_state(ns), ns.down_for, log=lambda m: print(m, flush=True))
    return 0


def cmd_kill_node(ns: argparse.Namespace) -> int:
    n = kill_node(_state(ns), ns.node)
    print(f"killed node {ns.node} ({n} processes)" if n else f"node {ns.node} was not running", flush=True)
    return 0


def cmd_restart_node(ns: argparse.Namespace) -> int:
    t = time.monotonic()
    new = restart_node(_state(ns), ns.node)
    print(f"node {ns.node} restarted (pid {new.pid}) in {time.monotonic() - t:.1f}s", flush=True)
    return 0


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
