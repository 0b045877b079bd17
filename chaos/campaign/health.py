"""Is the cluster healthy between two experiments? The checks, each answering with findings (a
check's name and a message saying what is wrong); chaos.campaign.checker reads the cluster and
calls them (``HealthChecker(target, bounds).check(label)``):

- **cluster**: every node alive, Ray and the controller answering;
- **records**: no proxy FAILED or listed for a node that is gone, no replica on a node that is
  gone or not placed (the stale records of issue 16);
- **applications**: every application RUNNING and every deployment at its target;
- **deploy**: a probe application deploys and answers through every proxy, and goes again
  (chaos.campaign.probe, run on the cluster);
- **processes**: replica, proxy and controller processes match what the cluster lists; every other role
  has no more processes than before the campaign (plus ``extra_processes``) and none fewer;
  none is stopped (SIGSTOP of a freeze never thawed); nothing this process started still runs;
- **network**: no network namespace left, no copy of the cluster's FORWARD rule added, no
  fault chain (``SC-FAULT``) or netem qdisc left in a node's namespace; in compose, no paused
  container and no network-fault helper left (``docker ps --filter status=paused``);
- **memory**, **fds**: every process's RSS and open files within the bounds, and not grown
  by more than allowed since the last check (chaos.run.resources samples them).

The cluster gets ``settle_s`` to become whole after a run (a killed replica's successor
starting, a restarted node joining) before what still differs is a finding. Everything here
is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chaos.campaign.probe import PROBE_APP
from chaos.run.resources import MIB, Usage
from chaos.spec.resource_check import TESTBED_ROLES

CHECKS = ("cluster", "records", "applications", "deploy", "processes", "network", "memory", "fds")
VARIABLE_ROLES = ("worker",)  # Ray's idle workers come and go: only more than allowed is a finding
FAULT_CHAIN = "SC-FAULT"  # embedded_cluster.network_faults' chain in a node's namespace
FORWARD_COMMENT = "serve-core cluster"  # embedded_cluster.netns' FORWARD rule


class HealthBounds(BaseModel):
    """How healthy the cluster must be between two experiments (a campaign's ``health``)."""

    model_config = ConfigDict(extra="forbid")

    settle_s: float = Field(120.0, ge=0, description="Seconds a cluster may take after a run to be whole again "
                                                     "(nodes back, replicas at target) before that is a finding.")
    probe: bool = Field(True, description="Deploy a probe application and call it through every proxy at each check.")
    probe_timeout_s: float = Field(120.0, gt=0, description="Seconds the probe's deploy may take.")
    max_rss_mib: dict[str, float] = Field(
        {"default": 1024.0}, description="Largest RSS of one process, MiB, per role (controller, proxy, replica, "
                                         "gcs, raylet, ...; 'default' for the others).")
    max_open_fds: dict[str, int] = Field(
        {"default": 1024}, description="Most open file descriptors of one process, per role ('default' for the others).")
    max_rss_growth_mib: float = Field(128.0, ge=0, description="Most a process's RSS may grow between two checks, MiB.")
    max_fds_growth: int = Field(64, ge=0, description="Most a process's open files may grow between two checks.")
    extra_processes: dict[str, int] = Field(
        {"default": 0, "worker": 4},
        description="Processes of a role tolerated above the count before the campaign ('default' for the others; "
                    "Ray starts and stops idle 'worker' processes on its own).")
    roles: list[str] | None = Field(None, description="Roles whose memory and open files are judged (default: "
                                                      f"every role but the testbed's own: {', '.join(TESTBED_ROLES)}).")

    def judged(self, role: str) -> bool:
        return role in self.roles if self.roles is not None else role not in TESTBED_ROLES


def limit(table: Mapping[str, Any], role: str) -> Any:
    """The bound of ``role`` in a per-role table (its 'default' otherwise; None: unbounded)."""
    return table.get(role, table.get("default"))


@dataclass(frozen=True)
class Finding:
    check: str  # one of CHECKS
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass(frozen=True)
class NetworkState:
    """What network faults could leave behind. None: not looked at (and why in ``skipped``)."""

    namespaces: tuple[str, ...] | None = None  # `ip netns list`
    expected_namespaces: tuple[str, ...] = ()  # the cluster's own
    forward_rules: int | None = None  # copies of the cluster's FORWARD rule
    leftovers: tuple[tuple[str, str], ...] = ()  # (node, what is left there)


@dataclass
class HealthReport:
    """One check: its findings, what it could not look at, and the figures (per role)."""

    label: str
    started: float
    took_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    processes: dict[str, int] = field(default_factory=dict)  # role -> count
    usage: dict[str, dict[str, float]] = field(default_factory=dict)  # role -> count, max/total RSS MiB, max fds
    probe: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step: status, probe, processes, network

    @property
    def healthy(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["healthy"] = self.healthy
        return d


# -- the checks (pure) --------------------------------------------------------------------------


def status_findings(doc: Mapping[str, Any], backend: str = "serve_core") -> list[Finding]:
    """What `cluster status --json` (or the compose target's status) shows wrong. Pure."""
    out: list[Finding] = []
    if doc.get("ray_error"):
        return [Finding("cluster", f"Ray does not answer: {doc['ray_error']}")]
    nodes = {str(n.get("name")): n for n in doc.get("nodes") or []}
    alive = {name for name, n in nodes.items() if n.get("alive") and (n.get("process") or {}).get("alive", True)}
    out += [Finding("cluster", f"node {name} is down") for name in nodes if name not in alive]
    if doc.get("serve_error"):
        out.append(Finding("cluster", f"the controller does not answer: {doc['serve_error']}"))
    serving = doc if backend == "serve_core" else (doc.get("ray_serve") or {})
    proxies = list(serving.get("proxies") or [])
    for p in proxies:
        node, state, why = str(p.get("node")), str(p.get("state")), f": {p['message']}" if p.get("message") else ""
        if node not in nodes:
            out.append(Finding("records", f"a {state} proxy is listed for node {node}, which is not in the cluster "
                                          f"(a stale record of a node that is gone){why}"))
        elif state == "FAILED":
            out.append(Finding("records", f"the proxy on node {node} is FAILED{why}"))
        elif node not in alive:
            out.append(Finding("records", f"a {state} proxy is listed on node {node}, which is down"))
        elif state not in ("HEALTHY", "RUNNING"):
            out.append(Finding("records", f"the proxy on node {node} is {state}{why}"))
    listed = {str(p.get("node")) for p in proxies}
    if backend == "serve_core" and (proxies or serving.get("applications")):
        out += [Finding("records", f"node {name} has no proxy") for name in sorted(alive - listed)]
    for app_name, app in sorted((serving.get("applications") or {}).items()):
        if app.get("status") != "RUNNING":
            out.append(Finding("applications", f"application {app_name} is {app.get('status')}"))
        for dep_name, dep in sorted((app.get("deployments") or {}).items()):
            where = f"{app_name}/{dep_name}"
            running, target = int((dep.get("replicas") or {}).get("RUNNING", 0)), dep.get("target")
            if dep.get("status") not in ("HEALTHY", None):
                out.append(Finding("applications", f"deployment {where} is {dep.get('status')}"))
            if isinstance(target, int) and running != target:
                out.append(Finding("applications", f"deployment {where} runs {running} replica(s), its target is {target}"))
            for node, count in sorted((dep.get("replicas_per_node") or {}).items()):
                if node not in nodes:
                    what = "not placed on any node" if node == "(not placed)" else \
                        f"listed on node {node}, which is not in the cluster (a stale record)"
                    out.append(Finding("records", f"{count} replica(s) of {where} {what}"))
                elif node not in alive:
                    out.append(Finding("records", f"{count} replica(s) of {where} listed on node {node}, which is down"))
    return out


def expected_counts(doc: Mapping[str, Any], backend: str = "serve_core") -> dict[str, int]:
    """Replica, proxy and controller processes the status says run (the controller: one while
    the backend serves anything; not claimed when the controller does not answer). Pure."""
    serving = doc if backend == "serve_core" else (doc.get("ray_serve") or {})
    apps, listed = serving.get("applications") or {}, serving.get("proxies") or []
    replicas = sum(int((d.get("replicas") or {}).get("RUNNING", 0)) for a in apps.values()
                   for d in (a.get("deployments") or {}).values())
    proxies = sum(1 for p in listed if p.get("state") in ("HEALTHY", "RUNNING"))
    out = {"replica": replicas, "proxy": proxies}
    if not doc.get("serve_error") and not doc.get("ray_error"):
        out["controller"] = 1 if apps or listed else 0
    return out


def probe_findings(doc: Mapping[str, Any] | None, error: str = "", names: Mapping[str, str] | None = None) -> list[Finding]:
    """What the probe (chaos.campaign.probe's JSON line) found; ``names``: node id -> node name. Pure."""
    if doc is None:
        return [Finding("deploy", f"the probe application could not be run: {error or 'no answer'}")]
    out: list[Finding] = []
    if not doc.get("deployed"):
        out.append(Finding("deploy", f"a new application does not deploy: {doc.get('error') or 'no reason given'}"))
    elif not doc.get("proxies"):
        out.append(Finding("deploy", "the probe application deployed, but no proxy is listed to call it through"))
    for node_id, p in sorted((doc.get("proxies") or {}).items()):
        if not p.get("ok"):
            node = (names or {}).get(node_id, node_id[:12])
            got = f"HTTP {p['status']}" if p.get("status") is not None else "no answer"
            out.append(Finding("deploy", f"the probe application does not answer through the proxy on node {node} "
                                         f"({p.get('url')}): {got}" + (f": {p['detail']}" if p.get("detail") else "")))
    if not doc.get("deleted"):
        out.append(Finding("deploy", f"the probe application {PROBE_APP} could not be deleted: "
                                     f"{doc.get('delete_error') or 'no reason given'}"))
    return out


def process_findings(baseline: Mapping[str, int], now: Mapping[str, int], expected: Mapping[str, int],
                     extra: Mapping[str, int]) -> list[Finding]:
    """Processes per role against what the cluster lists (replica, proxy) or the count before the
    campaign (the others), with ``extra`` tolerated above it. Pure."""
    out = []
    for role in sorted(set(baseline) | set(now) | set(expected)):
        have, allowed = now.get(role, 0), limit(extra, role) or 0
        if role in expected:
            want, what = expected[role], "the cluster lists"
        elif role in baseline or role in now:
            want, what = baseline.get(role, 0), "there were before the campaign"
        else:
            continue
        if have > want + allowed:
            out.append(Finding("processes", f"{have} {role} process(es) run, {what} {want}"
                                            + (f" (+{allowed} tolerated)" if allowed else "") + f": {have - want} leaked"))
        elif have < want and role not in VARIABLE_ROLES:
            out.append(Finding("processes", f"{have} {role} process(es) run, {what} {want}: {want - have} missing"))
    return out


def usage_findings(usage: Sequence[Usage], previous: Mapping[int, Usage], bounds: HealthBounds) -> list[Finding]:
    """Each judged process's RSS and open files against the bounds, and its growth since the
    previous check (the same pid, so a restarted process starts afresh). Pure."""
    out = []
    for u in sorted(usage, key=lambda u: (u.role, u.node, u.pid)):
        if not bounds.judged(u.role):
            continue
        who = f"{u.role} pid {u.pid} on {u.node}"
        rss, top_rss, top_fds = u.rss_bytes / MIB, limit(bounds.max_rss_mib, u.role), limit(bounds.max_open_fds, u.role)
        if top_rss is not None and rss > top_rss:
            out.append(Finding("memory", f"{who} holds {rss:.0f} MiB, above its bound of {top_rss:g} MiB"))
        if top_fds is not None and u.open_fds > top_fds:
            out.append(Finding("fds", f"{who} has {u.open_fds} open files, above its bound of {top_fds}"))
        before = previous.get(u.pid)
        if before is None or before.role != u.role:
            continue
        grew = (u.rss_bytes - before.rss_bytes) / MIB
        if grew > bounds.max_rss_growth_mib:
            out.append(Finding("memory", f"{who} grew by {grew:.0f} MiB since the last check ({before.rss_bytes / MIB:.0f} "
                                         f"-> {rss:.0f} MiB), more than {bounds.max_rss_growth_mib:g} MiB"))
        if u.open_fds - before.open_fds > bounds.max_fds_growth:
            out.append(Finding("fds", f"{who} has {u.open_fds - before.open_fds} more open files than at the last check "
                                      f"({before.open_fds} -> {u.open_fds}), more than {bounds.max_fds_growth}"))
    return out


def network_findings(baseline: NetworkState, now: NetworkState) -> list[Finding]:
    """Namespaces, FORWARD rules and node-level leftovers of network faults. Pure."""
    out = []
    if now.namespaces is not None:
        have = set(now.namespaces)
        out += [Finding("network", f"network namespace {ns} of the cluster is gone") for ns in now.expected_namespaces
                if ns not in have]
        if baseline.namespaces is not None:
            out += [Finding("network", f"network namespace {ns} appeared during the campaign and is still there")
                    for ns in sorted(have - set(baseline.namespaces) - set(now.expected_namespaces))]
    if now.forward_rules is not None and baseline.forward_rules is not None and now.forward_rules > baseline.forward_rules:
        out.append(Finding("network", f"{now.forward_rules} copies of the FORWARD rule '{FORWARD_COMMENT}' "
                                      f"(before the campaign: {baseline.forward_rules})"))
    out += [Finding("network", f"node {node}: {what}") for node, what in now.leftovers]
    return out


def role_figures(usage: Iterable[Usage]) -> dict[str, dict[str, float]]:
    """Per role: processes, largest and total RSS (MiB), most open files. Pure."""
    out: dict[str, dict[str, float]] = {}
    for u in usage:
        f = out.setdefault(u.role, {"count": 0, "max_rss_mib": 0.0, "total_rss_mib": 0.0, "max_fds": 0})
        f["count"] += 1
        f["max_rss_mib"] = round(max(f["max_rss_mib"], u.rss_bytes / MIB), 1)
        f["total_rss_mib"] = round(f["total_rss_mib"] + u.rss_bytes / MIB, 1)
        f["max_fds"] = max(f["max_fds"], u.open_fds)
    return dict(sorted(out.items()))


def iptables_leftovers(rules: str) -> str | None:
    """What ``iptables -S`` in a node's namespace shows left of a network fault. Pure."""
    if f"-N {FAULT_CHAIN}" not in rules:
        return None
    drops = sum(1 for line in rules.splitlines() if line.startswith(f"-A {FAULT_CHAIN} "))
    return f"iptables chain {FAULT_CHAIN} still there with {drops} rule(s) (a partition or packet loss not healed)"


def qdisc_leftovers(qdiscs: str) -> str | None:
    """What ``tc qdisc show`` shows left of a netem fault. Pure."""
    netem = [line.strip() for line in qdiscs.splitlines() if " netem " in f" {line} "]
    return f"a netem qdisc still there ({netem[0]}): a delay or loss not healed" if netem else None


def descendants_of(rows: Sequence[Any], pid: int) -> list[Any]:
    """The rows (with pid and ppid) descending from ``pid``. Pure."""
    children: dict[int, list[Any]] = {}
    for r in rows:
        children.setdefault(r.ppid, []).append(r)
    out, todo = [], [pid]
    while todo:
        for r in children.get(todo.pop(), []):
            out.append(r)
            todo.append(r.pid)
    return out
