"""Network namespaces for the nodes: a bridge, one namespace and veth pair per node, and
the iptables rule that lets the bridge forward (docker sets the FORWARD policy to DROP).

Only interfaces and namespaces this module creates are touched, and each is recorded
in the state file before `down` can need it. The namespaces get no default route:
nodes reach each other, the host's bridge address, and nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from embedded_cluster.errors import LocalClusterError, MissingBinaryError
from embedded_cluster.layout import PREFIXLEN, ClusterPlan, NodePlan

RULE_COMMENT = "serve-core cluster"


def _run(argv: list[str], check: bool = True, timeout_s: float = 20.0) -> subprocess.CompletedProcess[str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        raise MissingBinaryError(argv[0], "iproute2" if argv[0] == "ip" else argv[0]) from None
    except subprocess.TimeoutExpired:
        raise LocalClusterError(f"`{' '.join(argv)}` hung", f"no answer within {timeout_s}s", "check the host's network setup") from None
    if check and p.returncode != 0:
        raise LocalClusterError(
            f"`{' '.join(argv)}` failed", (p.stderr or p.stdout).strip() or f"exit code {p.returncode}",
            "run `serve-core cluster down` to remove what was created, or use --no-netns",
        )
    return p


def usable() -> tuple[bool, str]:
    """Can this process create namespaces? (root, `ip` present, `ip netns` works)"""
    if os.geteuid() != 0:
        return False, "not running as root"
    if shutil.which("ip") is None:
        return False, "`ip` is missing (apt-get install iproute2)"
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if p.returncode != 0:
        return False, f"`ip netns list` failed: {p.stderr.strip()}"
    return True, ""


def namespaces() -> list[str]:
    p = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def check_free(plan: ClusterPlan) -> None:
    """Fail before changing anything if the bridge or a namespace already exists."""
    taken = [n.namespace for n in plan.nodes if n.namespace in set(namespaces())]
    taken += [link for link in [plan.bridge] + [n.veth for n in plan.nodes] if link and link_exists(link)]
    if taken:
        raise LocalClusterError(
            "cannot create the cluster's network", f"{', '.join(str(t) for t in taken)} already exist(s), "
            "probably from another embedded cluster (only one netns cluster runs at a time)",
            "run `serve-core cluster down --name <its name>` first, or start this one with --no-netns",
        )


def create_bridge(bridge: str, host_address: str) -> None:
    _run(["ip", "link", "add", bridge, "type", "bridge"])
    _run(["ip", "addr", "add", f"{host_address}/{PREFIXLEN}", "dev", bridge])
    _run(["ip", "link", "set", bridge, "up"])


def create_node(node: NodePlan, bridge: str, created_ns: list[str], created_links: list[str]) -> None:
    """The node's namespace and a veth pair from the bridge into it, as ``eth0``.

    Appends to ``created_*`` as it goes, so a failure half way is still undone by `down`."""
    assert node.namespace and node.veth
    ns, veth, peer = node.namespace, node.veth, f"scp-{node.name}"
    _run(["ip", "netns", "add", ns])
    created_ns.append(ns)
    _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
    created_links.append(veth)
    _run(["ip", "link", "set", peer, "netns", ns])
    _run(["ip", "link", "set", veth, "master", bridge])
    _run(["ip", "link", "set", veth, "up"])
    inside = ["ip", "netns", "exec", ns]
    _run(inside + ["ip", "link", "set", peer, "name", "eth0"])
    _run(inside + ["ip", "addr", "add", f"{node.address}/{PREFIXLEN}", "dev", "eth0"])
    _run(inside + ["ip", "link", "set", "eth0", "up"])
    _run(inside + ["ip", "link", "set", "lo", "up"])


def forward_rule(bridge: str) -> list[str]:
    return ["FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", RULE_COMMENT, "-j", "ACCEPT"]


def add_forward_rule(bridge: str) -> list[str]:
    """Insert the ACCEPT rule for traffic between the bridge's ports; return its spec."""
    if shutil.which("iptables") is None:
        raise MissingBinaryError("iptables", "iptables")
    rule = forward_rule(bridge)
    if _run(["iptables", "-w", "5", "-I"] + rule, check=False).returncode != 0:
        rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]  # no comment module
        _run(["iptables", "-w", "5", "-I"] + rule)
    return rule


def remove_forward_rule(rule: list[str]) -> None:
    if not rule or shutil.which("iptables") is None:
        return
    for _ in range(10):  # once per copy, should one have been inserted twice
        if _run(["iptables", "-w", "5", "-D"] + rule, check=False).returncode != 0:
            return


def namespace_pids(ns: str) -> list[int]:
    p = _run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def delete_namespace(ns: str) -> None:
    if ns in namespaces():
        _run(["ip", "netns", "del", ns], check=False)


def delete_link(name: str) -> None:
    if link_exists(name):
        _run(["ip", "link", "del", name], check=False)
