"""A run's figures, read from its journal: the key numbers (``summary.json``), each fault's
recovery, the alerts that would have fired, and the rows of the SLO, fault and alert tables.
Shared by report.md (chaos.report.run_report) and report.html (chaos.report.html), which only lay them out.
Pure.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.run.resources import GROWING, MIB, SHORT, SeriesVerdict, judge, role_rank, samples_from_journal, trend_text
from chaos.slo.alert_timeline import AlertExpansionError, alert_conditions, timeline
from chaos.slo.crosscheck import ClientRecord, client_figures
from chaos.slo.queries import BACKENDS
from chaos.spec.resource_check import ResourceCheck

SUMMARY_VERSION = 1
WINDOWS = ("before", "during", "after", "whole")
# One fault's part of a recovery SLO's detail (chaos.slo.evaluate.judge_recovery).
_RECOVERY = re.compile(r"fault at ([\d.]+): (?:(no visible impact)|unhealthy from \+([\d.]+) s, recovered in "
                       r"([\d.]+) s|not recovered by [\d.]+ \(>= ([\d.]+) s\))")
_UNITS = {"availability": "ratio", "latency": "ms", "recovery": "s"}  # an error result has no unit
_SHOWN_LABELS_SKIP = ("severity", "backend", "alertname")  # the backend is the run's
J = dict[str, Any]


# -- small formatters ---------------------------------------------------------------------------


def pct(v: float | None, decimals: int = 3) -> str:
    """A ratio as a percentage, truncated: never rounded up to 100%."""
    if v is None:
        return "-"
    return "100%" if v >= 1 else f"{math.floor(v * 100 * 10 ** decimals + 1e-6) / 10 ** decimals:.{decimals}f}%"


def num(v: Any, unit: str = "", digits: int = 1, scale: float = 1.0) -> str:
    return f"{v * scale:.{digits}f}{unit}" if isinstance(v, int | float) else "-"


def span(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else round(float(b) - float(a), 3)


def causes(c: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))


# -- reading the journal ------------------------------------------------------------------------


def results(j: J, window: str) -> list[J]:
    return list(((j.get("steady_state") or {}).get(window) or {}).get("results") or [])


def first_result(j: J, window: str, kind: str) -> J | None:
    """The window's first result of ``kind``; for latency, the p99 one."""
    return next((r for r in results(j, window) if r.get("kind") == kind
                 and (kind != "latency" or "histogram_quantile(0.99," in str(r.get("query")))), None)


def load_start(j: J) -> float:
    return float(j.get("load_start") or j.get("start") or 0.0)


def fault_at(f: J) -> float | None:
    """When the fault acted: the command's own start, else its launch (as the runner judges it)."""
    return f.get("started") or f.get("launched")


def recoveries(j: J) -> dict[str, J]:
    """Fault id -> recovery_s (None: not recovered), impact_s, at_least_s, read from the recovery
    SLO's detail over the whole run (else the during window)."""
    for window in ("whole", "during"):
        found: dict[str, J] = {}
        for m in _RECOVERY.finditer(str((first_result(j, window, "recovery") or {}).get("detail") or "")):
            f = next((f for f in j.get("faults") or [] if abs((fault_at(f) or 0.0) - float(m[1])) < 0.002), None)
            if f is not None:
                found[str(f.get("id"))] = {"recovery_s": 0.0 if m[2] else float(m[4]) if m[4] else None,
                                           "impact_s": float(m[3]) if m[3] else None,
                                           "at_least_s": float(m[5]) if m[5] else None}
        if found:
            return found
    return {}


def target_text(f: J) -> str:
    t = (f.get("output") or {}).get("target") or {}
    parts = [str(t.get("node") or f.get("node") or "")]
    parts += [f"{k.replace('_id', '')} {t[k]}" for k in ("replica_id", "pid", "address") if t.get(k) is not None]
    if not t.get("replica_id") and f.get("deployment"):
        parts.append(f"deployment {f['deployment']}")
    return ", ".join(p for p in parts if p) or "-"


def decimals(j: J) -> int:
    """Enough decimals of a percentage for one request in all of them to show."""
    cs = j.get("client_summary") or {}
    judged = (cs.get("ok") or 0) + (cs.get("failed") or 0)
    return max(3, math.ceil(math.log10(judged)) - 1) if judged else 3


def headline(j: J) -> tuple[str, list[str]]:
    """The verdict in capitals and what to say under it: the reasons, or for a pass that all held."""
    verdict = str(j.get("verdict") or "unfinished").upper()
    judge = ", ".join(((j.get("experiment") or {}).get("steady_state") or {}).get("judge") or [])
    reasons = [str(r) for r in j.get("reasons") or []]
    return verdict, reasons or ([f"Every judged SLO held ({judge}) and every fault was injected."] if verdict == "PASSED" else [])


def run_line(j: J) -> str:
    """Where, on what and when the run ran, in one line."""
    sm, cs = summarize(j), j.get("client_summary") or {}
    return (f"{sm['target']} ({(j.get('target') or {}).get('workers', '?')} workers) · backend {j.get('backend')} · "
            f"seed {j.get('seed')} · started {sm['started_utc']} · run {num(sm['duration_s'], ' s')}, "
            f"load {num(span(cs.get('started_at'), cs.get('finished_at')), ' s')}")


# -- the alerts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    alert: str
    severity: str
    labels: str  # the labels that tell instances apart: slo=..., window=...
    pending_s: float  # seconds from the load start
    fired_s: float
    resolved_s: float | None  # None: still firing at the end


@dataclass(frozen=True)
class Alerts:
    """The alert section: rows in the order they fired, and what to say when there are none."""

    rows: list[AlertRow] = field(default_factory=list)
    note: str = ""  # the sentence for no rows, or about how the rules were evaluated
    errors: list[str] = field(default_factory=list)
    evaluated: bool = False
    end_s: float | None = None  # the end of the evaluated window, from the load start


def alerts(j: J) -> Alerts:
    """Which alerts would have fired, from the rules and condition results the journal holds."""
    a = j.get("alerts")
    if not a:
        return Alerts(note="Not evaluated: the journal has no alert data (the run ended before its SLOs were "
                           "judged, or was recorded before alerts were evaluated).")
    if a.get("error"):
        return Alerts(note=f"Not evaluated: {a['error']}")
    try:
        conditions = alert_conditions(a.get("rules") or {})
    except AlertExpansionError as e:
        return Alerts(note=f"Not evaluated: {e}")
    if not conditions:
        return Alerts(note="No alert rules: the SLOs have no availability, latency or PromQL objective.", evaluated=True)
    t0, start, end = load_start(j), float(a.get("start") or 0.0), float(a.get("end") or 0.0)
    tl = timeline(conditions, a.get("conditions") or {}, start, end)
    rows = [AlertRow(f.alert, f.severity or "-", ", ".join(f"{k}={v}" for k, v in f.labels.items()
                                                          if k not in _SHOWN_LABELS_SKIP) or "-",
                     round(f.pending_at - t0, 3), round(f.fired_at - t0, 3),
                     None if f.resolved_at is None else round(f.resolved_at - t0, 3)) for f in tl.firings]
    steps = sorted({c.step_s for c in conditions})
    how = (f"{len(conditions)} alert rule(s) of chaos.slo.alerts" + (f", windows scaled by {a['scale']:g}" if a.get("scale") else "")
           + f", evaluated every {', '.join(f'{s:g}' for s in steps)} s over {num(span(start, end), ' s', 0)} of the run")
    errors = [f"{k}: {e}" for k, e in tl.errors.items()]
    none = "None: no alert's condition held long enough to fire" if not errors else "None fired among those evaluated"
    return Alerts(rows, f"{how}." if rows else f"{none} ({how}).", errors, True, round(end - t0, 3))


# -- the key figures ----------------------------------------------------------------------------


def summarize(j: J) -> J:
    """The key figures, as ``summary.json``. Prometheus' figures are over the whole run."""
    cs, xc, tg = j.get("client_summary") or {}, j.get("crosscheck") or {}, j.get("target") or {}
    server = xc.get("server") or {}
    ok, failed = cs.get("ok"), cs.get("failed")
    judged = (ok or 0) + (failed or 0)
    p99, recs, start = (cs.get("latency_s") or {}).get("p99"), recoveries(j), j.get("start")
    avail, lat, rec, rec_during = ((first_result(j, w, k) or {}).get("value") for w, k in (
        ("whole", "availability"), ("whole", "latency"), ("whole", "recovery"), ("during", "recovery")))
    al = alerts(j)
    return {
        "version": SUMMARY_VERSION, "name": j.get("name"), "backend": j.get("backend"), "target": f"{tg.get('kind')}:{tg.get('name') or tg.get('project')}",
        "seed": j.get("seed"), "duration_s": span(start, j.get("end")),
        "started_utc": None if start is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start)),
        "verdict": j.get("verdict"), "reasons": list(j.get("reasons") or []),
        "sent": cs.get("sent"), "ok": ok, "failed": failed, "failed_by_cause": dict(cs.get("failed_by_cause") or {}),
        "availability_client": (ok or 0) / judged if judged else None,
        "availability_prometheus": server["availability"] if server.get("availability") is not None else avail,
        "p99_client_ms": None if p99 is None else p99 * 1000,
        "p99_prometheus_ms": server["p99_ms"] if server.get("p99_ms") is not None else lat,
        "crosscheck_ok": xc.get("ok"),
        "slos": {w: {str(r.get("name")): {"value": r.get("value"), "verdict": r.get("verdict")} for r in results(j, w)}
                 for w in WINDOWS if results(j, w)},
        "recovery_max_s": rec if rec is not None else rec_during,
        "faults": [{"id": f.get("id"), "action": f.get("action"), "planned_s": f.get("at_s"),
                    "at_s": span(load_start(j), fault_at(f)), "target": target_text(f), "ok": f.get("ok"),
                    "recovery_s": recs.get(str(f.get("id")), {}).get("recovery_s")} for f in j.get("faults") or []],
        # None: not evaluated; [] none would have fired
        "alerts": [{"alert": r.alert, "severity": r.severity, "labels": r.labels, "fired_s": r.fired_s,
                    "resolved_s": r.resolved_s} for r in al.rows] if al.evaluated else None,
        "aborts": [a.get("reason") for a in j.get("aborts") or []],
        "warnings": list(j.get("warnings") or []),
        "resources": resource_summary(j),
    }


# -- table rows ---------------------------------------------------------------------------------


NOT_JUDGED = "not_judged"  # a window the experiment does not judge (the warm-up before the faults, say)


@dataclass(frozen=True)
class WindowRow:
    """One SLO in one window, or (``slo`` "-") a window with no results and why in ``detail``."""

    window: str
    span: str = "-"
    slo: str = "-"
    objective: str = "-"
    prometheus: str = "-"
    client: str = "-"
    budget: str = "-"  # share of the window's error budget burned
    verdict: str = ""  # met, violated, no_data, error, not_judged; "" on a window's own row
    detail: str = ""
    ok: bool | None = None


def budget_burned(r: J) -> float | None:
    """Share of the error budget an availability result burned: error ratio / allowed error ratio."""
    v, t = r.get("value"), r.get("threshold")
    if r.get("kind") != "availability" or not isinstance(v, int | float) or not isinstance(t, int | float) or t >= 1:
        return None
    return max(0.0, 1.0 - v) / (1.0 - t)


def budget_text(b: float | None) -> str:
    if b is None:
        return "-"
    return "0%" if b == 0 else "< 0.1%" if b < 0.001 else f"{b * 100:.1f}%"


def window_rows(j: J, records: Sequence[ClientRecord] | None, dec: int) -> list[WindowRow]:
    """Every SLO per window as Prometheus judged it, with the client's figure for the same window."""
    backend = BACKENDS.get(str(j.get("backend")))
    answered_only = not (backend and backend.latency_counts_failures)  # as the cross-check
    rows: list[WindowRow] = []
    steady, t0 = j.get("steady_state") or {}, load_start(j)
    hypothesis = (j.get("experiment") or {}).get("steady_state") or {}
    judge = hypothesis.get("judge") or list(WINDOWS)
    # The before window gates the faults (the run aborts when it fails) unless require_before is off.
    counted = [*judge, *(["before"] if hypothesis.get("require_before", True) else [])]
    for w in WINDOWS:
        probe = steady.get(w)
        if not probe:
            rows.append(WindowRow(w, detail="not probed (the run ended first)"))
            continue
        sp = f"{probe['start'] - t0:.0f}–{probe['end'] - t0:.0f}"
        if probe.get("error"):
            rows.append(WindowRow(w, sp, detail=f"could not probe: {probe['error']}"))
        cf = client_figures(records, probe["start"], probe["end"], answered_only=answered_only) if records else None
        for r in probe.get("results") or []:
            unit, t, v = _UNITS.get(str(r.get("kind")), r.get("unit")), float(r.get("threshold") or 0.0), r.get("value")
            objective, value = (f"≥ {t * 100:g}%", pct(v, dec)) if unit == "ratio" else (
                (f"≤ {t:g} {unit}", num(v, f" {unit}")) if unit in ("ms", "s") else (f"{r.get('op')} {t:g}", num(v, "", 3)))
            client = "-"
            if cf and r.get("kind") == "availability":
                client = pct(cf.availability, dec)
            elif cf and r is first_result(j, w, "latency"):
                client = num(cf.p99_ms, " ms")
            verdict, detail, ok = str(r.get("verdict")), str(r.get("detail") or ""), r.get("ok")
            if w not in counted:  # shown for information; neither the verdict nor an abort counts it
                verdict, detail, ok = NOT_JUDGED, f"would be {verdict.replace('_', ' ')}; the experiment judges {', '.join(judge)}", None
            rows.append(WindowRow(w, sp, str(r.get("name")), objective, value, client, budget_text(budget_burned(r)),
                                  verdict, detail, ok))
    return rows


@dataclass(frozen=True)
class FaultRow:
    id: str
    planned: str
    at: str
    action: str
    target: str
    fault_took: str
    command_took: str
    result: str  # ok, running, error
    error: str
    recovery: str
    recovered: bool | None  # None: no recovery figure


def recovery_text(rec: J | None) -> str:
    if rec is None:
        return "-"
    if rec["recovery_s"] is None:
        return f"not recovered (≥ {rec['at_least_s']:g} s)"
    if rec["impact_s"] is None:
        return "0 s (no visible impact)"
    return f"{rec['recovery_s']:g} s (errors from +{rec['impact_s']:g} s)"


def fault_rows(j: J, faults: list[J], recs: dict[str, J]) -> list[FaultRow]:
    rows = []
    for f in faults:
        rec = recs.get(str(f.get("id")))
        result = "ok" if f.get("ok") else "running" if f.get("ok") is None else "error"
        rows.append(FaultRow(str(f.get("id")), num(f.get("at_s"), digits=0), num(span(load_start(j), fault_at(f)), digits=2),
                             str(f.get("action")), target_text(f), num(span(f.get("started"), f.get("ended")), digits=2),
                             num(f.get("took_s"), digits=2), result, str(f.get("error") or ""), recovery_text(rec),
                             None if rec is None else rec["recovery_s"] is not None))
    return rows


# -- memory and open files ----------------------------------------------------------------------


def resource_check(j: J) -> tuple[ResourceCheck, bool]:
    """The experiment's resource check (or the defaults, not required) and whether it was declared."""
    declared = ((j.get("experiment") or {}).get("steady_state") or {}).get("resources")
    return (ResourceCheck.model_validate(declared), True) if declared else (ResourceCheck(require_flat=False), False)


def resource_verdicts(j: J) -> list[SeriesVerdict]:
    """Every sampled process's trends, judged as the run judged them (chaos.run.resources)."""
    return judge(samples_from_journal(j.get("resources")), resource_check(j)[0])


@dataclass(frozen=True)
class ResourceRow:
    """The processes of one role on one node: how many, the longest-lived one's last figures, and the
    largest slope among those judged."""

    role: str
    node: str
    processes: int
    rss_mib: str  # the longest-lived process's last sample
    fds: str
    rss_slope: str  # "+1.20 ± 0.80 MiB/h" of the steepest judged process, or "-"
    fds_slope: str
    verdict: str  # flat, growing, short (none sampled long enough), not judged (role)
    growing: bool | None  # None: not judged


def resource_rows(verdicts: Sequence[SeriesVerdict]) -> list[ResourceRow]:
    groups: dict[tuple[str, str], list[SeriesVerdict]] = {}
    for v in verdicts:
        groups.setdefault((v.series.role, v.series.node), []).append(v)
    rows = []
    for (role, node), vs in sorted(groups.items(), key=lambda kv: (role_rank(kv[0][0]), kv[0][0], kv[0][1])):
        longest = max(vs, key=lambda v: (v.series.points[-1][0] - v.series.points[0][0], v.series.points[-1][0]))
        last = longest.series.points[-1]
        slopes = []
        for attr, unit in (("rss", "MiB/h"), ("fds", "fds/h")):
            judged = [v for v in vs if getattr(v, f"{attr}_verdict") != SHORT]
            worst = max(judged, key=lambda v: getattr(v, attr).slope_per_h, default=None)
            slopes.append(trend_text(getattr(worst, attr), unit) if worst else "-")
        states = {v.rss_verdict for v in vs} | {v.fds_verdict for v in vs}
        verdict = GROWING if GROWING in states else "flat" if states - {SHORT} else SHORT
        judged_role = vs[0].judged
        rows.append(ResourceRow(role, node, len(vs), f"{last[1] / MIB:.0f}", str(last[2]), slopes[0], slopes[1],
                                verdict if judged_role else f"{verdict} (not judged)",
                                (verdict == GROWING) if judged_role and verdict != SHORT else None))
    return rows


def resource_note(j: J, verdicts: Sequence[SeriesVerdict]) -> str:
    """What was sampled and how it was judged, in a sentence or three."""
    res, (check, declared) = j.get("resources") or {}, resource_check(j)
    samples = res.get("samples") or []
    if not samples:
        errors = res.get("errors") or []
        return ("Not sampled" + (f": {errors[-1].get('error')}" if errors else " (the experiment has no "
                "steady_state.resources and the run was not asked to sample)") + ".")
    span_s = float(samples[-1]["at"]) - float(samples[0]["at"])
    roles = {v.series.role for v in verdicts}
    how = (f"{len(samples)} samples every {float(res.get('every_s') or 0):g} s over {span_s:.0f} s: "
           f"{len(verdicts)} processes in {len(roles)} roles (a process killed and started again is a new one). "
           f"A process grows when its least-squares slope is above {check.max_rss_growth_mib_per_h:g} MiB/h of memory "
           f"(RSS) or {check.max_fd_growth_per_h:g} open files an hour, its 95% band is above zero and the line rises "
           f"at least {check.min_rss_rise_mib:g} MiB or {check.min_fd_rise:g} files over the time judged; its first "
           f"{check.warmup_s:g} s are left out, and one sampled for less than {check.min_span_s:g} s after that is "
           "too short to judge. ")
    how += ("Required: a growing process fails the run." if declared and check.require_flat else
            "Reported as a finding: the run does not require it." if declared else
            "Not declared by the experiment: judged with the defaults, for information.")
    if check.roles is not None:
        how += f" Judged: {', '.join(check.roles)}; the other roles are shown, not judged."
    if res.get("errors"):
        how += f" {len(res['errors'])} sample(s) failed; the last: {res['errors'][-1].get('error')}."
    return how


def resource_summary(j: J) -> J | None:
    """summary.json's resources entry: processes sampled, those growing, the steepest slopes."""
    if not (j.get("resources") or {}).get("samples"):
        return None
    verdicts = resource_verdicts(j)
    judged = [v for v in verdicts if v.judged]

    def steepest(attr: str) -> float | None:
        slopes = [getattr(v, attr).slope_per_h for v in judged if getattr(v, f"{attr}_verdict") != SHORT]
        return round(max(slopes), 3) if slopes else None

    growing = [v.series.key for v in judged if GROWING in (v.rss_verdict, v.fds_verdict)]
    return {"samples": len(j["resources"]["samples"]), "processes": len(verdicts),
            "judged": sum(1 for v in judged if (v.rss_verdict, v.fds_verdict) != (SHORT, SHORT)),
            "growing": growing, "max_rss_slope_mib_per_h": steepest("rss"), "max_fd_slope_per_h": steepest("fds"),
            "required": resource_check(j)[0].require_flat and resource_check(j)[1]}
