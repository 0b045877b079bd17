"""`serve-core cluster fault ...`: every fault by hand, and for the chaos runner.

With ``--json`` a fault prints exactly one JSON object on stdout:
``{"fault", "target", "started", "ended", "detail"}`` (unix seconds; ``ended`` is null for
a fault left in place, such as a partition without ``--for``). Failures exit non-zero
with the cause and the fix on stderr.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from embedded_cluster import faults, network_faults, probe
from embedded_cluster.state import ClusterState, require_state
from serve_core.errors import ConfigError

Fault = Callable[[ClusterState, argparse.Namespace, Callable[[str], None]], tuple[dict[str, Any], bool]]


def add_fault_commands(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:  # type: ignore[type-arg]
    f = sub.add_parser("fault", help="inject a fault: kill a replica, proxy, controller, GCS or node; partition, "
                                     "netem, heal; burn CPU")
    fsub = f.add_subparsers(dest="fault_command", required=True)

    def add(name: str, help: str, run: Fault) -> argparse.ArgumentParser:
        p = fsub.add_parser(name, help=help)
        common(p)
        p.add_argument("--json", action="store_true", help="print one JSON object describing the fault")
        p.set_defaults(handler=lambda ns: _run(ns, name, run))
        return p

    def node_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--node", required=required, default=None, help="node name: head, w1, w2, ...")

    def for_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--for", dest="for_s", type=float, default=0.0, metavar="SECONDS",
                       help="heal after this many seconds (default 0: leave it until `fault heal`)")

    def backend_arg(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--backend", choices=["serve_core", "ray_serve"], default="serve_core",
                       help="whose replicas, proxies or controller (default serve_core)")
        return p

    p = backend_arg(add("kill-replica", "SIGKILL one running replica", _kill_replica))
    p.add_argument("--deployment", help="only replicas of this deployment")
    p.add_argument("--app", help="only replicas of this application")
    node_arg(p, required=False)
    p.add_argument("--seed", type=int, default=None, help="choose among matching replicas with this seed")
    node_arg(backend_arg(add("kill-proxy", "SIGKILL the proxy on a node", _kill_proxy)))
    backend_arg(add("kill-controller", "SIGKILL the serving controller (Ray restarts it)", _kill_controller))
    p = add("kill-gcs", "SIGKILL the head's gcs_server, wait, relaunch it (Redis keeps its tables)", _kill_gcs)
    p.add_argument("--down-for", type=float, default=5.0, metavar="SECONDS",
                   help="seconds from the kill to the relaunch (default 5)")
    node_arg(add("kill-node", "SIGKILL a node's whole process tree (raylet, workers, proxy, replicas)", _kill_node))
    node_arg(add("restart-node", "stop a node if it runs, start it again with its original arguments", _restart_node))
    p = add("partition", "cut a node off the network (netns mode), or --freeze its processes", _partition)
    node_arg(p)
    p.add_argument("--freeze", action="store_true",
                   help="stop every process of the node (SIGSTOP) instead: its kernel still answers TCP")
    for_arg(p)
    p = add("netem", "drop a share of a node's packets, or delay them (needs the netem qdisc)", _netem)
    node_arg(p)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--loss-pct", type=float, default=0.0)
    for_arg(p)
    node_arg(add("heal", "undo partition (cut or frozen) and netem on a node", _heal))
    p = add("cpu-burn", "keep CPU cores busy on a node for a while", _cpu_burn)
    node_arg(p)
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--for", dest="for_s", type=float, required=True, metavar="SECONDS")


def _run(ns: argparse.Namespace, name: str, run: Fault) -> int:
    state = require_state(ns)
    say: Callable[[str], None] = (lambda m: None) if ns.json else (lambda m: print(m, flush=True))
    ns.started = time.time()  # handlers that must first ask Ray move it to the moment of the fault
    target, ended = run(state, ns, say)
    if ns.json:
        detail = target.pop("detail", {})
        print(json.dumps({"fault": name, "target": target, "started": ns.started,
                          "ended": time.time() if ended else None, "detail": detail}), flush=True)
    return 0


def _view(state: ClusterState, ns: argparse.Namespace, fresh: bool = False) -> dict[str, Any]:
    """The refresher's recent view (a fault then lands on time), or a probe's."""
    view = None if fresh else probe.recent(state)
    view = view or probe.ask(state, timeout_s=45.0)
    ns.started = time.time()
    if "error" in view:
        from embedded_cluster.errors import LocalClusterError
        raise LocalClusterError("cannot read serve_core's state from the cluster", view["error"],
                                "check `serve-core cluster status`: the head and its GCS must be up")
    return view


def _on_view(state: ClusterState, ns: argparse.Namespace, act: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """``act`` on the recent view; once more on a probe's if what it names is gone (it is
    up to 5 s old: a controller restarted, a proxy replaced)."""
    from embedded_cluster.errors import LocalClusterError

    try:
        return act(_view(state, ns))
    except LocalClusterError:
        return act(_view(state, ns, fresh=True))


def _kill_replica(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    t = _on_view(state, ns, lambda v: faults.kill_replica(state, v, ns.deployment, ns.app, ns.node, ns.seed, ns.backend))
    say(f"killed replica {t['replica_id']} of {t['app']}/{t['deployment']} (pid {t['pid']}) on {t['node']}")
    return t, True


def _kill_proxy(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    t = _on_view(state, ns, lambda v: faults.kill_proxy(state, v, ns.node, ns.backend))
    say(f"killed the proxy on {t['node']} (pid {t['pid']})")
    return t, True


def _kill_controller(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    t = _on_view(state, ns, lambda v: faults.kill_controller(state, v, ns.backend))
    say(f"killed the controller (pid {t['pid']}) on {t['node']}")
    return t, True


def _kill_gcs(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    if ns.down_for < 0:
        raise ConfigError("--down-for", ns.down_for, "give 0 or more seconds")
    detail = faults.kill_gcs(state, ns.down_for, log=say)
    return {"node": state.plan.head.name, "pid": detail["killed_pid"], "detail": detail}, True


def _kill_node(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    n = faults.kill_node(state, ns.node)
    say(f"killed node {ns.node} ({n} processes)" if n else f"node {ns.node} was not running")
    return {"node": ns.node, "detail": {"processes": n}}, True


def _restart_node(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    t = time.monotonic()
    new = faults.restart_node(state, ns.node)
    say(f"node {ns.node} restarted (pid {new.pid}) in {time.monotonic() - t:.1f}s")
    return {"node": ns.node, "pid": new.pid, "detail": {"took_s": time.monotonic() - t}}, True


def _hold_then_heal(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> bool:
    """Heal after ``--for`` seconds; returns whether the fault ended here."""
    if ns.for_s < 0:
        raise ConfigError("--for", ns.for_s, "give 0 (leave it) or more seconds")
    if not ns.for_s:
        say(f"left in place: undo with `serve-core cluster fault heal --node {ns.node}`")
        return False
    undone: dict[str, Any] = {}
    try:
        time.sleep(ns.for_s)
    finally:  # Ctrl-C heals too
        undone = _undo(state, ns.node)
    say(f"healed node {ns.node} after {ns.for_s:g}s" + REJOINED * bool(undone.get("restarted")))
    return True


def _partition(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    if ns.freeze:
        t = {"node": ns.node, "mode": "freeze", "processes": faults.freeze_node(state, ns.node)}
        say(f"node {ns.node}: {t['processes']} processes stopped")
    else:
        t = {**network_faults.partition(state, ns.node), "mode": "cut"}
        say(f"node {ns.node} ({t['address']}) cut off the network")
    return t, _hold_then_heal(state, ns, say)


def _netem(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    for flag, value, top in (("--loss-pct", ns.loss_pct, 100.0), ("--delay-ms", ns.delay_ms, None), ("--jitter-ms", ns.jitter_ms, None)):
        if value < 0 or (top is not None and value > top):
            raise ConfigError(flag, value, f"give a value from 0 to {top:g}" if top else "give 0 or more")
    if not (ns.loss_pct or ns.delay_ms or ns.jitter_ms):
        raise ConfigError("--loss-pct/--delay-ms", 0, "give a loss share or a delay")
    t = network_faults.netem(state, ns.node, ns.delay_ms, ns.jitter_ms, ns.loss_pct)
    say(f"node {ns.node}: {ns.loss_pct:g}% loss, {ns.delay_ms:g} ms delay")
    return {"node": ns.node, "address": t["address"], "detail": t}, _hold_then_heal(state, ns, say)


def _heal(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    t = _undo(state, ns.node)
    say(f"healed node {ns.node}" + REJOINED * bool(t.get("restarted")))
    return t, True


REJOINED = "; Ray had declared it dead meanwhile, so it was started again (as a node supervisor would)"


def _undo(state: ClusterState, node: str) -> dict[str, Any]:
    """Resume a frozen node and, in netns mode, remove its network faults; then, if it was cut
    off or frozen, start it again should Ray have declared it dead meanwhile (faults.rejoin)."""
    was_out = faults.is_frozen(state, node) or network_faults.is_cut(state, node)
    thawed = faults.thaw_node(state, node)
    healed = network_faults.heal(state, node) if state.plan.node(node).namespace else {"node": node}
    return {**healed, "thawed": thawed, "restarted": was_out and faults.rejoin(state, node)}


def _cpu_burn(state: ClusterState, ns: argparse.Namespace, say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    if ns.cores < 1 or ns.for_s <= 0:
        raise ConfigError("--cores/--for", f"{ns.cores}/{ns.for_s}", "give at least 1 core and more than 0 seconds")
    t = faults.cpu_burn(state, ns.node, ns.cores, ns.for_s)
    say(f"burned {ns.cores} core(s) on {ns.node} for {ns.for_s:g}s")
    return {"node": ns.node, "detail": t}, True
