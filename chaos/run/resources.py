"""What the cluster's processes hold: sample the memory (RSS) and open file descriptors of
every process of the cluster under test, and judge whether each stays flat.

- ``cluster_processes(target)``: every process of the cluster, as ``Proc(pid, role, node)``
  (the target finds them: chaos.targets.processes).
- ``sample(procs)``: ``Usage`` of each (processes gone since are skipped).
- ``judge(samples, check)``: a least-squares slope per process with its 95% band, and a verdict.
  A process is its own series: a replica killed and started again is a new process with a
  series of its own, so "flat" means no process grows while it lives, whatever its successors
  do. A series is **growing** when its slope is above the allowed growth *and* the growth is
  outside the noise (the band's lower end is above zero) and the line rises at least
  ``min_*_rise`` over the time judged (a process that lived 17 minutes and opened 3 more files
  once has a slope of 10 an hour, and no leak); **short** (not judged) when it lived
  less than ``min_span_s`` after its warm-up. Leaks that take the form of more processes
  (workers piling up) show in the count per role, which the report gives too.

Everything but ``read_table``, ``sample`` and the targets' ``processes()`` is pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaos.spec.resource_check import ResourceCheck
from chaos.targets.processes import Proc, ResourceError

MIB = 1024 * 1024
HOUR_S = 3600.0
MIN_POINTS = 5
# Roles in the order the report lists them; others follow by name.
ROLE_ORDER = ("controller", "proxy", "replica", "worker", "gcs", "raylet", "redis", "dashboard", "dashboard-agent",
              "runtime-env-agent", "ray-start", "ray-client-server", "log-monitor", "monitor", "prometheus", "targets")


# -- sampling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    pid: int
    role: str
    node: str
    rss_bytes: int
    open_fds: int


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


def verdict(trend: Trend | None, max_per_h: float, min_span_s: float, min_rise: float = 0.0) -> str:
    """growing: above the allowed growth, outside the noise, and rising at least ``min_rise`` over
    the span judged; short: too little to judge; else flat."""
    if trend is None or trend.n < MIN_POINTS or trend.span_s < min_span_s:
        return SHORT
    rise = trend.slope_per_h * trend.span_s / HOUR_S
    if trend.slope_per_h > max_per_h and trend.slope_per_h - trend.band_per_h > 0 and rise >= min_rise:
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
    return SeriesVerdict(s, check.judged(s.role), rss, fds,
                         verdict(rss, check.max_rss_growth_mib_per_h, check.min_span_s, check.min_rss_rise_mib),
                         verdict(fds, check.max_fd_growth_per_h, check.min_span_s, check.min_fd_rise))


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

COLUMNS = ("pid", "role", "node", "rss_bytes", "open_fds")  # as chaos.run.journal.RESOURCE_COLUMNS


def rows_of(usages: Sequence[Usage]) -> list[list[Any]]:
    return [[u.pid, u.role, u.node, u.rss_bytes, u.open_fds] for u in usages]


def samples_from_journal(resources: Mapping[str, Any] | None) -> list[tuple[float, list[Usage]]]:
    """The samples a journal's ``resources`` entry holds."""
    out = []
    for s in (resources or {}).get("samples") or []:
        out.append((float(s["at"]), [Usage(int(p[0]), str(p[1]), str(p[2]), int(p[3]), int(p[4]))
                                     for p in s.get("procs") or []]))
    return out
