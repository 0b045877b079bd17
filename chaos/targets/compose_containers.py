"""What the compose target reads and decides, without Docker: the project's containers from
`docker inspect` (compose's labels name the service and the container number), node names,
where to reach a port (inside the compose network or through the published port), the status
document chaos.targets.embedded reads, the replica a kill hits, and the network-fault scripts (run by a
short-lived helper container in the node's network namespace). Pure; ``chaos.targets.compose``
does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
ONEOFF_LABEL = "com.docker.compose.oneoff"
HEAD_SERVICE, WORKER_SERVICE, PROMETHEUS_SERVICE = "head", "worker", "prometheus"
NETWORK = "serve"  # the compose file's network (docker names it PROJECT_serve)
DEVICE = "eth0"
CHAIN = "SC-FAULT"  # as embedded_cluster/network_faults.py
HELPER_LABEL = "serve-core.net-fault-for"  # on a network-fault helper: the id of the container it acts in
APPLIED, HEALED = "serve-core: applied", "serve-core: healed"  # what a helper prints when it got there
HELPER_GRACE_S = 30.0  # a held fault's helper heals on its own this long after the fault should have ended


# -- the containers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    """One container of the project, from `docker inspect`."""

    id: str
    name: str  # docker's name (PROJECT-worker-1 or PROJECT_worker_1)
    service: str
    number: int
    status: str  # running, paused, exited, created, restarting, dead
    address: str  # on the project's network; "" when it has none
    published: dict[int, tuple[str, int]] = field(default_factory=dict)  # container port -> (host ip, host port)
    oneoff: bool = False
    image: str = ""  # the image id it runs (a network-fault helper runs the same image)

    @property
    def node(self) -> str | None:
        """The node name (head, w1, ...) of a Ray container; None for the other services."""
        if self.oneoff:
            return None
        if self.service == HEAD_SERVICE:
            return "head"
        if self.service == WORKER_SERVICE:
            return f"w{self.number}"
        return None

    @property
    def running(self) -> bool:
        return self.status == "running"


def container_from_attrs(attrs: dict[str, Any], project: str) -> Container:
    """A ``Container`` from a `docker inspect` document. Pure."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    wanted = f"{project}_{NETWORK}"
    address = ""
    for name in sorted(networks, key=lambda n: (n != wanted, n)):
        address = str((networks[name] or {}).get("IPAddress") or "")
        if address:
            break
    published: dict[int, tuple[str, int]] = {}
    for spec, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        port, _, proto = spec.partition("/")
        for b in bindings or []:
            if proto in ("tcp", "") and str(b.get("HostPort", "")).isdigit():
                published.setdefault(int(port), (str(b.get("HostIp") or "127.0.0.1"), int(b["HostPort"])))
    number = str(labels.get(NUMBER_LABEL, "1"))
    return Container(
        id=str(attrs.get("Id", "")), name=str(attrs.get("Name", "")).lstrip("/"), service=str(labels.get(SERVICE_LABEL, "")),
        number=int(number) if number.isdigit() else 1, status=str((attrs.get("State") or {}).get("Status", "")),
        address=address, published=published, oneoff=str(labels.get(ONEOFF_LABEL, "False")).lower() == "true",
        image=str(attrs.get("Image") or (attrs.get("Config") or {}).get("Image") or ""))


def node_containers(containers: list[Container]) -> dict[str, Container]:
    """Node name -> container, head first, then workers by number. Pure."""
    nodes = {c.node: c for c in containers if c.node}
    return {k: nodes[k] for k in sorted(nodes, key=lambda n: (n != "head", int(n[1:]) if n[1:].isdigit() else 0))}


def running_inside(containers: list[Container], hostname: str) -> bool:
    """Is this process in a container of the project (its hostname is the container id's prefix)? Pure."""
    return bool(hostname) and any(c.id.startswith(hostname) for c in containers)


def endpoint(c: Container, port: int, inside: bool) -> str | None:
    """host:port to reach ``port`` of ``c``: its own address inside the project's network, its
    published port from the host. None when unreachable that way. Pure."""
    if inside:
        return f"{c.address}:{port}" if c.address else None
    host = c.published.get(port)
    if host is None:
        return None
    ip = host[0] if host[0] not in ("0.0.0.0", "", "::") else "127.0.0.1"
    return f"{ip}:{host[1]}"


# -- the status document ------------------------------------------------------------------------


def status_doc(nodes: dict[str, Container], probe: dict[str, Any] | None, probe_error: str = "") -> dict[str, Any]:
    """The embedded cluster's status shape (chaos.targets.embedded reads it: snapshot_from_status,
    proxy_urls_from_status) from the node containers and the probe's view. A node is alive when
    its container runs and Ray lists a live node at its address. Pure."""
    view = probe or {}
    alive_at = {str(n.get("address")) for n in view.get("nodes") or [] if n.get("alive")}
    name_by_id: dict[str, str] = {}
    by_address = {c.address: name for name, c in nodes.items() if c.address}
    for n in view.get("nodes") or []:
        name = by_address.get(str(n.get("address")))
        if name and (n.get("alive") or str(n.get("node_id")) not in name_by_id):
            name_by_id[str(n.get("node_id"))] = name
    doc: dict[str, Any] = {"mode": "netns", "nodes": [], "proxies": [], "applications": {}}
    for name, c in nodes.items():
        doc["nodes"].append({
            "name": name, "role": "head" if name == "head" else "worker", "address": c.address,
            "container": c.name, "status": c.status,
            "alive": c.running and c.address in alive_at, "process": {"alive": c.running},
        })
    serve = view.get("serve") or {}
    doc["proxies"], doc["applications"] = _serving(serve, name_by_id)
    if view.get("ray_serve"):
        proxies, apps = _serving(view["ray_serve"], name_by_id)
        doc["ray_serve"] = {"proxies": proxies, "applications": apps}
    if probe_error or view.get("error"):
        doc["ray_error"] = probe_error or str(view.get("error"))
    if view.get("serve_error"):
        doc["serve_error"] = view["serve_error"]
    return doc


def _serving(serve: dict[str, Any], name_by_id: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    proxies = [{"node": name_by_id.get(node_id, node_id[:12]), "state": p.get("state", ""),
                "address": f"{p.get('host', '')}:{p.get('port', '')}"}
               for node_id, p in (serve.get("proxies") or {}).items()]
    applications: dict[str, Any] = {}
    for app_name, app in (serve.get("applications") or {}).items():
        deps = {}
        for dep_name, dep in (app.get("deployments") or {}).items():
            per_node: dict[str, int] = {}
            for r in dep.get("replicas") or []:
                where = name_by_id.get(str(r.get("node_id", "")), "(not placed)")
                per_node[where] = per_node.get(where, 0) + 1
            deps[dep_name] = {"status": dep.get("status"), "replicas": dep.get("replica_states", {}),
                              "target": dep.get("target_replicas"), "replicas_per_node": per_node}
        applications[app_name] = {"status": app.get("status"), "route_prefix": app.get("route_prefix"),
                                  "deployments": deps}
    return proxies, applications


def node_names(view: dict[str, Any], nodes: dict[str, Container]) -> dict[str, str]:
    """Ray node id -> node name, by address (a restarted container is a new Ray node at the same one). Pure."""
    by_address = {c.address: name for name, c in nodes.items() if c.address}
    return {str(n["node_id"]): by_address[str(n.get("address"))] for n in view.get("nodes") or []
            if n.get("node_id") and str(n.get("address")) in by_address}


def netem_command(delay_ms: float = 0.0, jitter_ms: float = 0.0, loss_pct: float = 0.0) -> list[str]:
    """`tc qdisc add ... netem` for the delay and loss. Pure."""
    argv = ["tc", "qdisc", "add", "dev", DEVICE, "root", "netem"]
    if delay_ms or jitter_ms:
        argv += ["delay", f"{delay_ms:g}ms"] + ([f"{jitter_ms:g}ms"] if jitter_ms else [])
    if loss_pct:
        argv += ["loss", f"{loss_pct:g}%"]
    return argv


def iptables_loss_script(loss_pct: float) -> str:
    """A shell script dropping ``loss_pct``% of the container's packets in and out (iptables'
    statistic match, which needs no qdisc; all of them at 100, a partition), in a chain of its
    own. Pure."""
    match = "" if loss_pct >= 100 else f"-m statistic --mode random --probability {loss_pct / 100.0:.4f} "
    return (f"{IPTABLES_CLEAR}; iptables -w 5 -N {CHAIN} && "
            f"iptables -w 5 -A {CHAIN} {match}-j DROP && "
            f"iptables -w 5 -I INPUT -i {DEVICE} -j {CHAIN} && iptables -w 5 -I OUTPUT -o {DEVICE} -j {CHAIN}")


IPTABLES_CLEAR = (f"while iptables -w 5 -D INPUT -i {DEVICE} -j {CHAIN} 2>/dev/null; do :; done; "
                  f"while iptables -w 5 -D OUTPUT -o {DEVICE} -j {CHAIN} 2>/dev/null; do :; done; "
                  f"iptables -w 5 -F {CHAIN} 2>/dev/null; iptables -w 5 -X {CHAIN} 2>/dev/null; true")
HEAL_SCRIPT = f"tc qdisc del dev {DEVICE} root 2>/dev/null; {IPTABLES_CLEAR}"


# -- the network-fault helper's scripts ---------------------------------------------------------


def netem_apply(delay_ms: float = 0.0, jitter_ms: float = 0.0, loss_pct: float = 0.0) -> str:
    """The shell commands that put a netem on ``DEVICE`` (delay, jitter, loss) and print ``how=``;
    where the kernel has no netem qdisc, loss alone falls back to iptables' statistic match and a
    delay fails (exit 4, tc's error on stderr). Pure."""
    tc = " ".join(netem_command(delay_ms, jitter_ms, loss_pct))
    if delay_ms or jitter_ms:
        fallback = "echo \"no netem qdisc: $(cat /tmp/tc.err)\" >&2; exit 4"
    else:
        fallback = f"{{ {iptables_loss_script(loss_pct)}; }} && echo how=iptables statistic"
    return f"{HEAL_SCRIPT}; if {tc} 2>/tmp/tc.err; then echo how=tc netem; else {fallback}; fi"


def cut_apply() -> str:
    """Every packet in and out of ``DEVICE`` dropped (a cut cable); prints ``how=``. Pure."""
    return f"{{ {iptables_loss_script(100.0)}; }} && echo how=iptables drop"


def helper_script(apply: str, hold_s: float | None) -> str:
    """What a network-fault helper runs (``sh -c``, as root with NET_ADMIN in the node's network
    namespace). It applies the fault and prints ``APPLIED``; a failed apply is undone (exit 3; a
delay without the netem qdisc exits 4 before anything is applied).
    With ``hold_s`` it stays, heals on SIGTERM (the runner's end of the fault) or on its own
    ``HELPER_GRACE_S`` after ``hold_s`` (a runner that died leaves no cut behind), and prints
    ``HEALED``. Without, it exits at once: the fault stays until a ``heal``. Pure."""
    lines = [f"heal() {{ {HEAL_SCRIPT}; }}",
             "trap 'heal; echo \"" + HEALED + "\"; exit 0' TERM INT" if hold_s is not None else ":",
             f"{{ {apply}; }} || {{ heal; exit 3; }}",
             f'echo "{APPLIED}"']
    if hold_s is not None:
        lines += [f"sleep {max(0.0, hold_s) + HELPER_GRACE_S:.0f} & wait $!", "heal", f'echo "{HEALED}"']
    return "\n".join(lines)


def heal_script() -> str:
    """A helper that removes every network fault of the namespace and exits. Pure."""
    return f"{HEAL_SCRIPT}\necho \"{HEALED}\""


def helper_how(stdout: str) -> str:
    """The ``how=`` a helper printed ("" when none). Pure."""
    return next((line[4:].strip() for line in stdout.splitlines() if line.startswith("how=")), "")
