"""Network faults on a node of the netns cluster: cut it off (partition), drop a share of
its packets or delay them (netem), and heal.

All rules live in a chain of our own inside the node's namespace (``SC-FAULT``, jumped to
from INPUT and OUTPUT), so `heal` removes exactly them and deleting the namespace at
`down` leaves nothing behind. Delay needs the kernel's netem qdisc; where it is missing
(as on these machines' kernels) a delay is refused with the cause, and loss uses
iptables' statistic match instead, which needs no qdisc.
"""

from __future__ import annotations

import subprocess
from typing import Any

from embedded_cluster.errors import LocalClusterError
from embedded_cluster.layout import NodePlan
from embedded_cluster.state import ClusterState

CHAIN = "SC-FAULT"
DEVICE = "eth0"  # the node's end of its veth pair (netns.create_node)


def partition(state: ClusterState, node: str) -> dict[str, Any]:
    """Drop every packet in and out of the node: to others it is as if its cable were cut."""
    n = _netns_node(state, node)
    _reset_chain(n)
    _ipt(n, "-A", CHAIN, "-j", "DROP")
    return {"node": node, "address": n.address}


def netem(state: ClusterState, node: str, delay_ms: float = 0.0, jitter_ms: float = 0.0,
          loss_pct: float = 0.0) -> dict[str, Any]:
    """Delay (each way) and drop a share of the node's packets."""
    n = _netns_node(state, node)
    detail: dict[str, Any] = {"node": node, "address": n.address, "loss_pct": loss_pct, "delay_ms": delay_ms}
    _clear_qdisc(n)
    if delay_ms or jitter_ms:
        argv = ["tc", "qdisc", "add", "dev", DEVICE, "root", "netem", "delay", f"{delay_ms}ms"]
        if jitter_ms:
            argv.append(f"{jitter_ms}ms")
        p = _in(n, argv)
        if p.returncode != 0:
            raise LocalClusterError(
                f"cannot delay node {node}'s packets", f"`tc qdisc ... netem` failed: {p.stderr.strip()} "
                "(this kernel has no netem qdisc)", "inject loss only (--loss-pct) or run on a kernel with sch_netem")
    _reset_chain(n)
    if loss_pct:
        probability = f"{loss_pct / 100.0:.4f}"
        _ipt(n, "-A", CHAIN, "-m", "statistic", "--mode", "random", "--probability", probability, "-j", "DROP")
    return detail


def heal(state: ClusterState, node: str) -> dict[str, Any]:
    """Undo partition and netem on the node."""
    n = _netns_node(state, node)
    _clear_qdisc(n)
    _remove_chain(n)
    return {"node": node, "address": n.address}


def is_cut(state: ClusterState, node: str) -> bool:
    """Whether the node's fault chain drops every packet (partition, not netem's share)."""
    n = state.plan.node(node)
    if not n.namespace:
        return False
    rules = _in(n, ["iptables", "-w", "5", "-S", CHAIN])
    return rules.returncode == 0 and any(line.strip() == f"-A {CHAIN} -j DROP" for line in rules.stdout.splitlines())


def _netns_node(state: ClusterState, name: str) -> NodePlan:
    node = state.plan.node(name)
    if not node.namespace:
        raise LocalClusterError(f"cannot cut node {name} off the network", "the cluster shares loopback (no-netns mode)",
                                "bring the cluster up as root without --no-netns: each node then has its own namespace")
    return node


def _in(node: NodePlan, argv: list[str]) -> subprocess.CompletedProcess[str]:
    assert node.namespace
    return subprocess.run(["ip", "netns", "exec", node.namespace] + argv, capture_output=True, text=True, timeout=20)


def _ipt(node: NodePlan, *args: str, check: bool = True) -> None:
    p = _in(node, ["iptables", "-w", "5", *args])
    if check and p.returncode != 0:
        raise LocalClusterError(f"iptables {' '.join(args)} failed in {node.namespace}", p.stderr.strip(),
                                "check that iptables works in network namespaces (apt-get install iptables)")


def _reset_chain(node: NodePlan) -> None:
    """An empty SC-FAULT chain, jumped to once from INPUT and OUTPUT on the node's device."""
    _remove_chain(node)
    _ipt(node, "-N", CHAIN)
    _ipt(node, "-I", "INPUT", "-i", DEVICE, "-j", CHAIN)
    _ipt(node, "-I", "OUTPUT", "-o", DEVICE, "-j", CHAIN)


def _remove_chain(node: NodePlan) -> None:
    for hook, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
        while _in(node, ["iptables", "-w", "5", "-D", hook, flag, DEVICE, "-j", CHAIN]).returncode == 0:
            pass
    _ipt(node, "-F", CHAIN, check=False)
    _ipt(node, "-X", CHAIN, check=False)


def _clear_qdisc(node: NodePlan) -> None:
    _in(node, ["tc", "qdisc", "del", "dev", DEVICE, "root"])  # fails harmlessly when there is none
