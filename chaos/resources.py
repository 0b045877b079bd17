"""The cluster's processes and what they hold: find every process of the cluster under test,
sample its memory (RSS) and open file descriptors, and judge whether each stays flat.

- ``cluster_processes(target)``: every process of the cluster, as ``Proc(pid, role, node)``.
  The embedded cluster's are the processes in its nodes' network namespaces, the processes it
  recorded (redis, prometheus, each node's `ray start`), whatever names its state directory on
  the command line (a relaunched gcs_server, a node's raylet) and all their descendants. A
  compose project's are the processes in its containers' cgroups, as the host sees them.
- ``sample(procs)``: ``Usage`` of each (processes gone since are skipped).
- ``judge(samples, check)``: a least-squares slope per process with its 95% band, and a verdict.
  A process is its own series: a replica killed and started again is a new process with a
  series of its own, so "flat" means no process grows while it lives, whatever its successors
  do. A series is **growing** when its slope is above the allowed growth *and* the growth is
  outside the noise (the band's lower end is above zero); **short** (not judged) when it lived
  less than ``min_span_s`` after its warm-up. Leaks that take the form of more processes
  (workers piling up) show in the count per role, which the report gives too.

Everything but ``read_table``, ``sample`` and the targets' ``processes()`` is pure.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024
HOUR_S = 3600.0
TESTBED_ROLES = ("prometheus", "targets")  # the testbed's own processes: shown, not judged by default
HOST = "host"  # the node of a process outside every node (redis, prometheus of the embedded cluster)
MIN_POINTS = 5
# Roles in the order the report lists them; others follow by name.
ROLE_ORDER = ("controller", "proxy", "replica", "worker", "gcs", "raylet", "redis", "dashboard", "dashboard-agent",
              "runtime-env-agent", "ray-start", "ray-client-server", "log-monitor", "monitor", "prometheus", "targets")


class ResourceCheck(BaseModel):
    """Sample every process of the cluster during the run and require memory and open files to stay
    flat (``steady_state.resources``)."""

    model_config = ConfigDict(extra="forbid")

    sample_every_s: float = Field(10.0, ge=1, le=600, description="Seconds between two samples of every process.")
    require_flat: bool = Field(True, description="A growing process fails the run (false: reported as a finding).")
    max_rss_growth_mib_per_h: float = Field(
        16.0, gt=0, description="Allowed memory growth of one process, MiB per hour (least-squares slope).")
    max_fd_growth_per_h: float = Field(10.0, gt=0, description="Allowed open-file growth of one process, per hour.")
    warmup_s: float = Field(60.0, ge=0, description="Each process's first seconds (imports, caches) are not judged.")
    min_span_s: float = Field(120.0, gt=0, description="A process sampled for less than this after its warm-up is "
                                                       "too short to judge.")
    roles: list[str] | None = Field(None, description="Roles judged (default: every role but the testbed's own: "
                                                      f"{', '.join(TESTBED_ROLES)}).")

    def judged(self, role: str) -> bool:
        return role in self.roles if self.roles is not None else role not in TESTBED_ROLES


# -- processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    role: str  # gcs, raylet, controller, proxy, replica, worker, redis, prometheus, dashboard, ...
    node: str  # head, w1, ... ("host" outside every node)


@dataclass(frozen=True)
class Usage:
    pid: int
    role: str
    node: str
    rss_bytes: int
    open_fds: int


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
    ("embedded_cluster.targets", "targets"), ("/ray start", "ray-start"),
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


def cluster_processes(target: Any) -> list[Proc]:
    """Every process of the cluster under test (the target's ``processes()``)."""
    find = getattr(target, "processes", None)
    if find is None:
        raise ResourceError(f"target {getattr(target, 'description', target)!r} cannot list its processes")
    return list(find())


def sample(procs: Iterable[Proc]) -> list[Usage]:
    """Memory and open files of each process; those gone (or not ours to see) are skipped."""
    import psutil

    out = []
    for p in procs:
        try:
            ps = psutil.Process(p.pid)
            with ps.oneshot():
                out.append(Usage(p.pid, p.role, p.node, int(ps.memory_info().rss), int(ps.num_fds())))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


# -- the trend (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """A least-squares line through a series: slope and its 95% band per hour, in the series' unit."""

    slope_per_h: float
    band_per_h: float  # half-width of the slope's 95% confidence interval
    n: int
    span_s: float
    mean: float
    first: float
    last: float


# Student's t, 97.5% quantile, by degrees of freedom (the largest tabulated <= df is used: conservative).
_T975 = ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365), (8, 2.306), (9, 2.262),
         (10, 2.228), (12, 2.179), (15, 2.131), (20, 2.086), (25, 2.060), (30, 2.042), (40, 2.021), (60, 2.000),
         (120, 1.980))


def t975(df: int) -> float:
    return next((t for d, t in reversed(_T975) if df >= d), math.inf) if df < 1000 else 1.960


def fit(points: Sequence[tuple[float, float]]) -> Trend | None:
    """The least-squares slope of (seconds, value) points; None with fewer than three."""
    n = len(points)
    if n < 3:
        return None
    ts, ys = [p[0] for p in points], [p[1] for p in points]
    mt, my = sum(ts) / n, sum(ys) / n
    sxx = sum((t - mt) ** 2 for t in ts)
    if sxx <= 0:
        return None
    slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / sxx
    ssr = sum((y - my - slope * (t - mt)) ** 2 for t, y in zip(ts, ys, strict=True))
    se = math.sqrt(max(0.0, ssr) / (n - 2) / sxx)
    return Trend(slope * HOUR_S, t975(n - 2) * se * HOUR_S, n, max(ts) - min(ts), my, ys[0], ys[-1])


FLAT, GROWING, SHORT = "flat", "growing", "short"


def verdict(trend: Trend | None, max_per_h: float, min_span_s: float) -> str:
    """growing: above the allowed growth and outside the noise; short: too little to judge; else flat."""
    if trend is None or trend.n < MIN_POINTS or trend.span_s < min_span_s:
        return SHORT
    if trend.slope_per_h > max_per_h and trend.slope_per_h - trend.band_per_h > 0:
        return GROWING
    return FLAT


@dataclass(frozen=True)
class Series:
    """One process over the run: (unix s, rss bytes, open fds) points."""

    node: str
    role: str
    pid: int
    points: tuple[tuple[float, int, int], ...]

    @property
    def key(self) -> str:
        return f"{self.role} {self.node} pid {self.pid}"


def series_of(samples: Iterable[tuple[float, Sequence[Usage]]]) -> list[Series]:
    """Per process (node, role, pid) series from samples taken at unix times, in the report's order."""
    found: dict[tuple[str, str, int], list[tuple[float, int, int]]] = {}
    for at, usages in samples:
        for u in usages:
            found.setdefault((u.node, u.role, u.pid), []).append((at, u.rss_bytes, u.open_fds))
    out = [Series(node, role, pid, tuple(sorted(pts))) for (node, role, pid), pts in found.items()]
    return sorted(out, key=lambda s: (role_rank(s.role), s.role, s.node, s.points[0][0], s.pid))


def role_rank(role: str) -> int:
    return ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)


@dataclass(frozen=True)
class SeriesVerdict:
    series: Series
    judged: bool  # its role is judged
    rss: Trend | None  # MiB
    fds: Trend | None
    rss_verdict: str  # flat, growing, short
    fds_verdict: str


def judge_series(s: Series, check: ResourceCheck) -> SeriesVerdict:
    start = s.points[0][0] + check.warmup_s
    kept = [p for p in s.points if p[0] >= start]
    rss = fit([(t, r / MIB) for t, r, _ in kept])
    fds = fit([(t, float(f)) for t, _, f in kept])
    return SeriesVerdict(s, check.judged(s.role), rss, fds, verdict(rss, check.max_rss_growth_mib_per_h, check.min_span_s),
                         verdict(fds, check.max_fd_growth_per_h, check.min_span_s))


def judge(samples: Iterable[tuple[float, Sequence[Usage]]], check: ResourceCheck) -> list[SeriesVerdict]:
    return [judge_series(s, check) for s in series_of(samples)]


def results(verdicts: Sequence[SeriesVerdict], check: ResourceCheck, error: str | None = None) -> list[dict[str, Any]]:
    """The two checks as SLO results (name, kind, value, ok, verdict, threshold, unit, detail): the
    largest slope among judged processes, ok when none grows; ok None when none could be judged."""
    out = []
    for name, attr, limit, unit in (("memory growth", "rss", check.max_rss_growth_mib_per_h, "MiB/h"),
                                    ("open files growth", "fds", check.max_fd_growth_per_h, "fds/h")):
        judged = [v for v in verdicts if v.judged and getattr(v, f"{attr}_verdict") != SHORT]
        growing = [v for v in judged if getattr(v, f"{attr}_verdict") == GROWING]
        short = sum(1 for v in verdicts if v.judged) - len(judged)
        worst = max(judged, key=lambda v: getattr(v, attr).slope_per_h, default=None)
        ok = None if worst is None else not growing
        if worst is None:
            detail = error or f"no process sampled long enough to judge ({short} too short)"
        else:
            shown = growing or [worst]
            detail = (f"{len(growing)} of {len(judged)} processes growing" if growing else
                      f"all {len(judged)} processes flat") + (f" ({short} too short to judge)" if short else "") + "; " + \
                "; ".join(f"{v.series.key} {trend_text(getattr(v, attr), unit)}" for v in shown[:5])
        out.append({"name": name, "kind": "resources", "value": None if worst is None else
                    round(getattr(worst, attr).slope_per_h, 3), "threshold": limit, "op": "<=", "unit": unit,
                    "ok": ok, "verdict": "no_data" if ok is None else "met" if ok else "violated", "query": "",
                    "detail": detail})
    return out


def trend_text(t: Trend | None, unit: str) -> str:
    return "-" if t is None else f"{t.slope_per_h:+.2f} ± {t.band_per_h:.2f} {unit}"


# -- journal data -----------------------------------------------------------------------------

COLUMNS = ("pid", "role", "node", "rss_bytes", "open_fds")  # as chaos.journal.RESOURCE_COLUMNS


def rows_of(usages: Sequence[Usage]) -> list[list[Any]]:
    return [[u.pid, u.role, u.node, u.rss_bytes, u.open_fds] for u in usages]


def samples_from_journal(resources: Mapping[str, Any] | None) -> list[tuple[float, list[Usage]]]:
    """The samples a journal's ``resources`` entry holds."""
    out = []
    for s in (resources or {}).get("samples") or []:
        out.append((float(s["at"]), [Usage(int(p[0]), str(p[1]), str(p[2]), int(p[3]), int(p[4]))
                                     for p in s.get("procs") or []]))
    return out
