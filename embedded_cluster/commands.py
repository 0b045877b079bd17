"""`serve-core cluster up | status | exec | down`: the command-line handlers.

``add_cluster_commands(subparsers)`` registers them on serve-core's parser; each handler
takes the parsed arguments and returns an exit code, raising a ServeCoreError (printed
by serve-core as ``error: ...``) for anything the user must fix.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from embedded_cluster import fault_commands, layout, netns, probe, processes, prometheus, ray_nodes, redis, status
from embedded_cluster.errors import LocalClusterError
from embedded_cluster.state import DEFAULT_ROOT, ClusterState, ProcessRecord, load, require_state, state_dir
from serve_core.cli.terminal import Bar
from serve_core.errors import ConfigError

# Roles, stopped group by group. A Ray node hosting actors does not finish a graceful stop
# in useful time (its raylet waits on them), so nodes get a short grace before SIGTERM to
# all their processes and then SIGKILL.
STOP_ORDER = (("targets",), ("prometheus",), ("worker", "head"), ("redis",))
GRACE_S = {"targets": 10.0, "prometheus": 10.0, "worker": 5.0, "head": 5.0, "redis": 10.0}
PROBE_TIMEOUT_S = 60.0
log = logging.getLogger("embedded_cluster")


# -- registration ---------------------------------------------------------------------------


def add_cluster_commands(subparsers: Any) -> None:
    """Add ``cluster`` with its subcommands to serve-core's subparsers."""
    c = subparsers.add_parser(
        "cluster", help="an embedded multi-node cluster on this machine (Ray nodes, Redis, Prometheus)",
        description="Bring up a Ray head and N worker nodes on this machine (each in its own network "
                    "namespace when run as root), with Redis for GCS fault tolerance and a Prometheus "
                    "server that scrapes every node and serve_core process.",
    )
    sub = c.add_subparsers(dest="cluster_command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--name", default="default", help="cluster name (default: default)")
        sp.add_argument("--state-root", default=os.environ.get("SERVE_CORE_CLUSTER_ROOT", DEFAULT_ROOT),
                        help=f"where state directories live (default: {DEFAULT_ROOT})")

    up = sub.add_parser("up", help="start a head and N worker nodes, Redis and Prometheus")
    common(up)
    up.add_argument("--workers", type=int, default=2, help="worker nodes (default 2)")
    up.add_argument("--no-netns", action="store_true", help="share loopback even when root (distinct ports per node)")
    up.add_argument("--worker-cpus", type=int, default=2, help="logical CPUs per worker node (default 2)")
    up.add_argument("--head-cpus", type=int, default=0,
                    help="logical CPUs of the head (default 0: replicas are not placed on the head)")
    up.add_argument("--gcs-port", type=int, default=layout.PortSettings.gcs)
    up.add_argument("--redis-port", type=int, default=layout.PortSettings.redis)
    up.add_argument("--prometheus-port", type=int, default=layout.PortSettings.prometheus)
    up.add_argument("--node-port-base", type=int, default=layout.PortSettings.node_base,
                    help="first of each node's block of Ray ports (loopback: +100 per node)")
    up.add_argument("--proxy-port", type=int, default=layout.PortSettings.proxy,
                    help="loopback mode: the head's proxy port, +1 per worker (netns: serve_core's http port on every node)")
    up.set_defaults(handler=cmd_up)

    st = sub.add_parser("status", help="nodes, proxies, applications, replicas per node, Redis, Prometheus")
    common(st)
    st.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    st.set_defaults(handler=status.cmd_status)

    ex = sub.add_parser("exec", help="run a command as a driver of the cluster (on a node, with its token)",
                        description="Run COMMAND with RAY_ADDRESS, RAY_AUTH_MODE and RAY_AUTH_TOKEN set, inside the "
                                    "node's network namespace in netns mode (a Ray driver must run on a node). "
                                    "Example: serve-core cluster exec -- serve-core run examples.function_app.app:app "
                                    "--non-blocking")
    common(ex)
    ex.add_argument("--node", default="head", help="node to run on (default head)")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    ex.set_defaults(handler=cmd_exec)

    dn = sub.add_parser("down", help="stop everything `up` started and remove its network and state")
    common(dn)
    dn.add_argument("--keep-logs", action="store_true", help="keep the state directory's logs/")
    dn.set_defaults(handler=cmd_down)

    fault_commands.add_fault_commands(sub, common)


# -- up -------------------------------------------------------------------------------------


def choose_mode(no_netns: bool) -> tuple[str, str]:
    if no_netns:
        return layout.LOOPBACK, "--no-netns"
    ok, why = netns.usable()
    return (layout.NETNS, "root") if ok else (layout.LOOPBACK, why)


def cmd_up(ns: argparse.Namespace) -> int:
    mode, why = choose_mode(ns.no_netns)
    ports = layout.PortSettings(ns.gcs_port, ns.redis_port, ns.prometheus_port, ns.node_port_base, ns.proxy_port)
    if ns.worker_cpus < 0 or ns.head_cpus < 0:
        raise ConfigError("--worker-cpus/--head-cpus", min(ns.worker_cpus, ns.head_cpus), "use 0 or more")
    plan = layout.plan(ns.name, ns.workers, mode, ports, ns.worker_cpus, ns.head_cpus)
    directory = state_dir(ns.state_root, plan.name)
    if load(ns.state_root, plan.name) is not None:
        raise LocalClusterError(
            f"cluster {plan.name!r} is already up (or was not brought down)", f"{directory}/state.json exists",
            f"run `serve-core cluster down --name {plan.name}` first, or pick another --name",
        )
    check_socket_paths(directory)
    preflight(plan)
    print(f"starting cluster {plan.name!r}: head + {ns.workers} workers, {mode} mode ({why})", flush=True)
    for sub in ("redis", "prometheus", "ray"):  # no stale GCS tables, series or sessions
        shutil.rmtree(os.path.join(directory, sub), ignore_errors=True)
    state = ClusterState(plan, directory, secrets.token_hex(32), secrets.token_hex(16))
    state.created_at = time.time()
    state.save()
    started = time.monotonic()
    try:
        bring_up(state)
    except BaseException as e:
        print(f"up failed ({type(e).__name__}); stopping what was started", file=sys.stderr, flush=True)
        tear_down(state, keep_logs=True)
        if isinstance(e, LocalClusterError):
            e.fix = f"{e.fix} (logs kept in {state.logs_dir})"
        raise
    print(summary(state, time.monotonic() - started), end="", flush=True)
    return 0


# Ray puts unix sockets at <temp dir>/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store
RAY_SOCKET_SUFFIX = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")
UNIX_PATH_MAX = 107


def check_socket_paths(directory: str) -> None:
    longest = len(os.path.join(directory, "ray", "head")) + RAY_SOCKET_SUFFIX
    if longest > UNIX_PATH_MAX:
        raise ConfigError(
            "--state-root", os.path.dirname(directory),
            f"Ray's socket paths under it would be {longest} bytes, over the limit of {UNIX_PATH_MAX}; "
            "use a shorter --state-root or --name",
        )


def preflight(plan: layout.ClusterPlan) -> None:
    """Everything that can be checked before changing anything."""
    processes.require_binary("redis-server", "redis-server")
    processes.require_binary("prometheus", "prometheus")
    processes.require_binary("ray", "ray[default] (pip install 'ray[default]==2.60.0')")
    if plan.mode == layout.NETNS:
        processes.require_binary("ip", "iproute2")
        processes.require_binary("iptables", "iptables")
        netns.check_free(plan)
        # Host-side listeners bind the bridge address, which does not exist yet; a port
        # taken on any address would block them, so check the wildcard address.
        host_ports = [(plan.ports.redis, "redis (--redis-port)"), (plan.ports.prometheus, "prometheus (--prometheus-port)")]
    else:  # Ray's servers listen on every address: check the wildcard address
        host_ports = [(p, what) for _, p, what in plan.listen_ports()]
    busy = [(p, what) for p, what in host_ports if not processes.port_free("0.0.0.0", p)]
    if busy:
        p, what = busy[0]
        flag = what.split("(")[-1].rstrip(")")
        others = f" (and {len(busy) - 1} more of the cluster's ports)" if len(busy) > 1 else ""
        raise ConfigError(flag, p, f"port {p} (for {what.split(' (')[0]}) is in use on this machine{others}; "
                                   f"free it or choose another {flag}")


UP_STEPS = 6  # network, redis, head, workers, prometheus, nodes registered


def bring_up(state: ClusterState) -> None:
    """Start everything of the plan, a line per part (on a terminal, with a bar of the steps
    and the time left)."""
    plan = state.plan
    env = ray_nodes.cluster_env(state)
    os.makedirs(state.logs_dir, exist_ok=True)
    bar = Bar(sys.stdout, UP_STEPS, "cluster up")
    done = 0

    def step(line: str | None = None) -> None:
        nonlocal done
        done += 1
        if line:
            bar.print(line)
        bar.update(done)

    try:
        if plan.mode == layout.NETNS:
            assert plan.bridge
            netns.create_bridge(plan.bridge, plan.host_address)
            state.links_created.append(plan.bridge)
            state.save()
            state.forward_rule = netns.add_forward_rule(plan.bridge)
            state.save()
            for node in plan.nodes:
                try:
                    netns.create_node(node, plan.bridge, state.netns_created, state.links_created)
                finally:
                    state.save()
        step()
        redis.start(state, env)
        step(f"  redis       {plan.redis_address}")

        def start_node(node: layout.NodePlan) -> ProcessRecord:
            record = ray_nodes.start_node(state, node, env)
            state.add(record)
            state.save()
            return record

        head = start_node(plan.head)
        ray_nodes.wait_started(head)
        state.save()
        step(f"  head        {plan.gcs_address}" + (f" (netns {plan.head.namespace})" if plan.head.namespace else ""))
        records = [start_node(n) for n in plan.workers]
        with ThreadPoolExecutor(max(1, len(records))) as pool:
            list(pool.map(ray_nodes.wait_started, records))
        state.save()
        step("\n".join(f"  {n.name:<11} {n.address}" + (f" (netns {n.namespace})" if n.namespace else "")
                       for n in plan.workers) or None)
        prometheus.start(state, env)
        step(f"  prometheus  {plan.prometheus_url}")
        targets = processes.spawn(
            "targets", "targets",
            [sys.executable, "-m", "embedded_cluster.scrape_targets", "--state-dir", state.state_dir],
            os.path.join(state.logs_dir, "targets.log"), ray_nodes.driver_env(state), namespace=plan.head.namespace,
        )
        state.add(targets)
        state.save()
        wait_for_nodes(state)
        step()
    finally:
        bar.stop()
    state.ready = True
    state.save()


def wait_for_nodes(state: ClusterState) -> None:
    """Until Ray lists every node of the plan alive; records their node ids."""
    want = {(n.address, n.ports.metrics_export): n.name for n in state.plan.nodes}
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = probe.ask(state, timeout_s=max(5.0, deadline - time.monotonic()))
        seen = {want[(n["address"], n["metrics_port"])]: n["node_id"]
                for n in last.get("nodes", []) if n["alive"] and (n["address"], n["metrics_port"]) in want}
        if len(seen) == len(want):
            state.node_ids = seen
            return
        time.sleep(1)
    raise LocalClusterError(
        "not every node joined the cluster", f"Ray lists {last.get('nodes', last)}",
        f"see the node logs in {state.logs_dir}",
    )


def summary(state: ClusterState, took_s: float) -> str:
    plan = state.plan
    lines = [
        f"cluster {plan.name!r} is up in {took_s:.0f}s ({plan.mode} mode)",
        f"  head (GCS)  {plan.gcs_address}",
        "  proxies     " + ", ".join(proxy_url(plan, n) for n in plan.nodes),
        f"  redis       {plan.redis_address} (password in the state file)",
        f"  prometheus  {plan.prometheus_url}",
        f"  state       {state.path}",
        "deploy with:  serve-core cluster exec" + (f" --name {plan.name}" if plan.name != "default" else "")
        + " -- serve-core run examples.function_app.app:app --non-blocking",
        "",
    ]
    return "\n".join(lines)


def proxy_url(plan: layout.ClusterPlan, node: layout.NodePlan) -> str:
    """Where the node's proxy listens once serve_core starts (loopback mode: at serve-core
    run's default host, 127.0.0.1)."""
    host = node.address if plan.mode == layout.NETNS else plan.host_address
    return f"http://{host}:{node.proxy_port}"


# -- exec -----------------------------------------------------------------------------------


def cmd_exec(ns: argparse.Namespace) -> int:
    state = require_state(ns)
    argv = list(ns.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise ConfigError("COMMAND", "", "give the command to run after --, e.g. `serve-core cluster exec -- serve-core status`")
    node = state.plan.node(ns.node)
    if node.namespace:
        argv = ["ip", "netns", "exec", node.namespace] + argv
    try:
        return subprocess.run(argv, env=ray_nodes.driver_env(state)).returncode
    except FileNotFoundError:
        raise ConfigError("COMMAND", argv[0], "no such program; check the command after --") from None


# -- down -----------------------------------------------------------------------------------


def cmd_down(ns: argparse.Namespace) -> int:
    state = load(ns.state_root, ns.name)
    if state is None:
        print(f"no cluster named {ns.name!r} is up (no state file in {state_dir(ns.state_root, ns.name)})")
        return 0
    left = tear_down(state, keep_logs=ns.keep_logs)
    if left:
        print(f"cluster {ns.name!r}: could not remove: {'; '.join(left)}", file=sys.stderr)
        return 1
    print(f"cluster {ns.name!r} is down")
    return 0


def tear_down(state: ClusterState, keep_logs: bool = False) -> list[str]:
    """Stop every process of the state, remove its network and files. Idempotent; returns
    what could not be removed (empty when all is gone)."""
    left: list[str] = []
    for roles in STOP_ORDER:
        records = [p for p in state.processes if p.role in roles]
        if records:
            leaders = {p.pid: p.start_time for p in records}
            # a node's GCS and raylet, should its `ray start` be gone already
            children = {c["pid"]: c["start_time"] for p in records for c in p.children.values()}
            t = time.monotonic()
            was = processes.stop_pids(leaders, children, timeout_s=max(GRACE_S[r] for r in roles))
            log.info("stopped %s (%s) in %.1fs", "+".join(roles), "running" if was else "already gone", time.monotonic() - t)
    for ns_name in state.netns_created:  # anything still inside our namespaces is ours too
        pids = netns.namespace_pids(ns_name)
        if pids:
            processes.stop_pids({}, {p: 0 for p in pids}, timeout_s=5)
    for p in state.processes:
        if processes.alive(p):
            left.append(f"{p.name} (pid {p.pid})")
    if state.forward_rule:
        netns.remove_forward_rule(state.forward_rule)
    for ns_name in state.netns_created:
        netns.delete_namespace(ns_name)
        if ns_name in netns.namespaces():
            left.append(f"namespace {ns_name}")
    for link in reversed(state.links_created):  # veths first, the bridge last
        netns.delete_link(link)
        if netns.link_exists(link):
            left.append(f"interface {link}")
    if not left:
        remove_files(state, keep_logs)
    return left


def remove_files(state: ClusterState, keep_logs: bool) -> None:
    if keep_logs:  # logs/ and Ray's session logs under ray/
        for sub in ("redis", "prometheus"):
            shutil.rmtree(state.sub(sub), ignore_errors=True)
        try:
            os.unlink(state.path)
        except FileNotFoundError:
            pass
    else:
        shutil.rmtree(state.state_dir, ignore_errors=True)
