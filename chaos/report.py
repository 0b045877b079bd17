"""The uptime report of a run: ``report.md`` for people and ``summary.json`` (the key figures,
for tests and serve_core vs Ray Serve comparisons), both beside ``journal.json``.

``write_report(journal, path)`` works on any journal (``python -m chaos report RUN_DIR``);
``ReportListener`` writes them when a run finishes. Like the journal, it is a listener on the
runner's events: the runner knows nothing of reports. Everything but the file I/O is pure.
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
import time
from collections.abc import Sequence
from typing import Any

from chaos.crosscheck import ClientRecord, client_figures, read_records
from chaos.errors import ChaosError
from chaos.journal import JOURNAL_FILE, Event, Journal, RunFinished, RunStarted, to_plain, write_json_atomic
from chaos.slo_queries import BACKENDS

REPORT_FILE, SUMMARY_FILE, SUMMARY_VERSION = "report.md", "summary.json", 1
WINDOWS = ("before", "during", "after", "whole")
# One fault's part of a recovery SLO's detail (chaos.slo.judge_recovery).
_RECOVERY = re.compile(r"fault at ([\d.]+): (?:(no visible impact)|unhealthy from \+([\d.]+) s, recovered in "
                       r"([\d.]+) s|not recovered by [\d.]+ \(>= ([\d.]+) s\))")
_VERDICTS = {"met": "met", "violated": "**violated**", "no_data": "no data"}
_UNITS = {"availability": "ratio", "latency": "ms", "recovery": "s"}  # an error result has no unit
J = dict[str, Any]


class ReportError(ChaosError, ValueError):
    """A journal that cannot be found or read."""


def load_run(path: str) -> tuple[J, str]:
    """The journal and the run directory, from a run directory or its journal file."""
    file = os.path.join(path, JOURNAL_FILE) if os.path.isdir(path) else path
    try:
        with open(file) as f:
            return dict(json.load(f)), os.path.dirname(os.path.abspath(file))
    except FileNotFoundError:
        raise ReportError(f"no journal at {file}: give a run directory (reports/chaos/NAME-TIME) "
                          "or its journal.json") from None
    except (OSError, ValueError) as e:
        raise ReportError(f"{file}: not a readable journal ({e})") from None


def write_report(journal: J, path: str, records: Sequence[ClientRecord] | None = None) -> str:
    """Write ``report.md`` and ``summary.json`` into ``path`` (a run directory, or the report's
    file name). Client records default to ``load/records.jsonl`` beside it. Returns the report's path."""
    directory, file = os.path.split(path) if path.endswith(".md") else (path, REPORT_FILE)
    directory = directory or "."
    if records is None:
        try:
            records = read_records(os.path.join(directory, "load", "records.jsonl"))
        except (OSError, ValueError):
            records = None  # moved or trimmed: the report goes without the client's per-window figures
    write_json_atomic(os.path.join(directory, SUMMARY_FILE), summarize(journal))
    report = os.path.join(directory, file)
    with open(report + ".tmp", "w") as f:
        f.write(render(journal, records))
    os.replace(report + ".tmp", report)
    return report


class ReportListener(Journal):
    """A journal kept in memory (the Journal listener writes journal.json) that writes the report
    into the run directory when the run finishes; ``report_path`` then names it."""

    def __init__(self) -> None:
        super().__init__("")
        self.report_path: str | None = None

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        if isinstance(event, RunStarted):
            self.directory = event.run_dir
        elif isinstance(event, RunFinished) and self.directory:
            self.report_path = write_report(to_plain(self.doc), self.directory)

    def write(self) -> None:
        pass


# -- figures (pure) -----------------------------------------------------------------------------


def _results(j: J, window: str) -> list[J]:
    return list(((j.get("steady_state") or {}).get(window) or {}).get("results") or [])


def _first(j: J, window: str, kind: str) -> J | None:
    """The window's first result of ``kind``; for latency, the p99 one."""
    return next((r for r in _results(j, window) if r.get("kind") == kind
                 and (kind != "latency" or "histogram_quantile(0.99," in str(r.get("query")))), None)


def _t0(j: J) -> float:
    return float(j.get("load_start") or j.get("start") or 0.0)


def _fault_at(f: J) -> float | None:
    """When the fault acted: the command's own start, else its launch (as the runner judges it)."""
    return f.get("started") or f.get("launched")


def recoveries(j: J) -> dict[str, J]:
    """Fault id -> recovery_s (None: not recovered), impact_s, at_least_s, read from the recovery
    SLO's detail over the whole run (else the during window)."""
    for window in ("whole", "during"):
        found: dict[str, J] = {}
        for m in _RECOVERY.finditer(str((_first(j, window, "recovery") or {}).get("detail") or "")):
            f = next((f for f in j.get("faults") or [] if abs((_fault_at(f) or 0.0) - float(m[1])) < 0.002), None)
            if f is not None:
                found[str(f.get("id"))] = {"recovery_s": 0.0 if m[2] else float(m[4]) if m[4] else None,
                                           "impact_s": float(m[3]) if m[3] else None,
                                           "at_least_s": float(m[5]) if m[5] else None}
        if found:
            return found
    return {}


def _target(f: J) -> str:
    t = (f.get("output") or {}).get("target") or {}
    parts = [str(t.get("node") or f.get("node") or "")]
    parts += [f"{k.replace('_id', '')} {t[k]}" for k in ("replica_id", "pid", "address") if t.get(k) is not None]
    if not t.get("replica_id") and f.get("deployment"):
        parts.append(f"deployment {f['deployment']}")
    return ", ".join(p for p in parts if p) or "-"


def summarize(j: J) -> J:
    """The key figures, as ``summary.json``. Prometheus' figures are over the whole run."""
    cs, xc, tg = j.get("client_summary") or {}, j.get("crosscheck") or {}, j.get("target") or {}
    server = xc.get("server") or {}
    ok, failed = cs.get("ok"), cs.get("failed")
    judged = (ok or 0) + (failed or 0)
    p99, recs, start = (cs.get("latency_s") or {}).get("p99"), recoveries(j), j.get("start")
    avail, lat, rec, rec_during = ((_first(j, w, k) or {}).get("value") for w, k in (
        ("whole", "availability"), ("whole", "latency"), ("whole", "recovery"), ("during", "recovery")))
    return {
        "version": SUMMARY_VERSION, "name": j.get("name"), "backend": j.get("backend"), "target": f"{tg.get('kind')}:{tg.get('name') or tg.get('project')}",
        "seed": j.get("seed"), "duration_s": _span(start, j.get("end")),
        "started_utc": None if start is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start)),
        "verdict": j.get("verdict"), "reasons": list(j.get("reasons") or []),
        "sent": cs.get("sent"), "ok": ok, "failed": failed, "failed_by_cause": dict(cs.get("failed_by_cause") or {}),
        "availability_client": (ok or 0) / judged if judged else None,
        "availability_prometheus": server["availability"] if server.get("availability") is not None else avail,
        "p99_client_ms": None if p99 is None else p99 * 1000,
        "p99_prometheus_ms": server["p99_ms"] if server.get("p99_ms") is not None else lat,
        "crosscheck_ok": xc.get("ok"),
        "slos": {w: {str(r.get("name")): {"value": r.get("value"), "verdict": r.get("verdict")} for r in _results(j, w)}
                 for w in WINDOWS if _results(j, w)},
        "recovery_max_s": rec if rec is not None else rec_during,
        "faults": [{"id": f.get("id"), "action": f.get("action"), "planned_s": f.get("at_s"),
                    "at_s": _span(_t0(j), _fault_at(f)), "target": _target(f), "ok": f.get("ok"),
                    "recovery_s": recs.get(str(f.get("id")), {}).get("recovery_s")} for f in j.get("faults") or []],
        "aborts": [a.get("reason") for a in j.get("aborts") or []],
        "warnings": list(j.get("warnings") or []),
    }


# -- text (pure) --------------------------------------------------------------------------------


def pct(v: float | None, decimals: int = 3) -> str:
    """A ratio as a percentage, truncated: never rounded up to 100%."""
    if v is None:
        return "-"
    return "100%" if v >= 1 else f"{math.floor(v * 100 * 10 ** decimals + 1e-6) / 10 ** decimals:.{decimals}f}%"


def _n(v: Any, unit: str = "", digits: int = 1, scale: float = 1.0) -> str:
    return f"{v * scale:.{digits}f}{unit}" if isinstance(v, int | float) else "-"


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _span(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else round(float(b) - float(a), 3)


def _causes(c: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))


def _window_table(j: J, records: Sequence[ClientRecord] | None, dec: int) -> list[str]:
    backend = BACKENDS.get(str(j.get("backend")))
    answered_only = not (backend and backend.latency_counts_failures)  # as the cross-check
    lines = ["| window | span (s) | SLO | objective | Prometheus | client | verdict |", "|---|---|---|---|---|---|---|"]
    steady, t0 = j.get("steady_state") or {}, _t0(j)
    for w in WINDOWS:
        probe = steady.get(w)
        if not probe:
            lines.append(f"| {w} | - | - | - | - | - | not probed (the run ended first) |")
            continue
        span = f"{probe['start'] - t0:.0f}–{probe['end'] - t0:.0f}"
        if probe.get("error"):
            lines.append(f"| {w} | {span} | - | - | - | - | could not probe: {_cell(probe['error'])} |")
        cf = client_figures(records, probe["start"], probe["end"], answered_only=answered_only) if records else None
        for r in probe.get("results") or []:
            unit, t, v = _UNITS.get(str(r.get("kind")), r.get("unit")), float(r.get("threshold") or 0.0), r.get("value")
            objective, value = (f"≥ {t * 100:g}%", pct(v, dec)) if unit == "ratio" else (
                (f"≤ {t:g} {unit}", _n(v, f" {unit}")) if unit in ("ms", "s") else (f"{r.get('op')} {t:g}", _n(v, "", 3)))
            client = "-"
            if cf and r.get("kind") == "availability":
                client = pct(cf.availability, dec)
            elif cf and r is _first(j, w, "latency"):
                client = _n(cf.p99_ms, " ms")
            verdict = _VERDICTS.get(str(r.get("verdict")), f"**{r.get('verdict')}**: "
                                + textwrap.shorten(_cell(r.get("detail")), 100, placeholder="…"))
            lines.append(f"| {w} | {span} | {_cell(r.get('name'))} | {objective} | {value} | {client} | {verdict} |")
    return lines


def _fault_table(j: J, faults: list[J], recs: dict[str, J]) -> list[str]:
    lines = ["| id | planned (s) | at (s) | action | target | fault took (s) | command took (s) | result | recovery |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in faults:
        rec = recs.get(str(f.get("id")))
        recovery = "-" if rec is None else (
            f"not recovered (≥ {rec['at_least_s']:g} s)" if rec["recovery_s"] is None
            else "0 s (no visible impact)" if rec["impact_s"] is None
            else f"{rec['recovery_s']:g} s (errors from +{rec['impact_s']:g} s)")
        result = "ok" if f.get("ok") else "running" if f.get("ok") is None else f"**error**: {_cell(f.get('error'))}"
        lines.append(f"| {f.get('id')} | {_n(f.get('at_s'), digits=0)} | {_n(_span(_t0(j), _fault_at(f)), digits=2)} | "
                     f"{f.get('action')} | {_cell(_target(f))} | {_n(_span(f.get('started'), f.get('ended')), digits=2)} "
                     f"| {_n(f.get('took_s'), digits=2)} | {result} | {recovery} |")
    return lines


def _crosscheck(xc: J | None, dec: int) -> list[str]:
    if not xc:
        return ["No cross-check was made (see the warnings)."]
    c, s, text = xc.get("client") or {}, xc.get("server") or {}, str(xc.get("summary") or "")
    tol_pp = re.search(r"(?:within|outside) ([\d.]+) pp", text)
    tol_b = re.search(r"bucket\(s\) apart.*\((?:within|outside) (\d+)\)", text)
    ok = {True: "within tolerance", False: "**outside tolerance**", None: "not compared (no data on one side)"}
    cb, sb, rel = xc.get("p99_client_bucket_ms"), xc.get("p99_server_bucket_ms"), xc.get("p99_relative_diff")
    unseen, no_answer = xc.get("unseen_by_server"), {k: v for k, v in (c.get("failures") or {}).items() if not k.isdigit()}
    lines = [f"- Availability: client {pct(c.get('availability'), dec)}, Prometheus {pct(s.get('availability'), dec)}: "
             f"{_n(xc.get('availability_diff_pp'), ' pp', 3)} apart, {ok[xc.get('availability_ok')]}"
             + (f" ({tol_pp[1]} pp)" if tol_pp else "") + ".",
             f"- p99: client {_n(c.get('p99_ms'), ' ms')}, Prometheus {_n(s.get('p99_ms'), ' ms')}: "
             f"{xc.get('p99_bucket_distance', '-')} bucket(s) apart"
             + (f" ({cb[0]:g}–{cb[1]:g} ms vs {sb[0]:g}–{sb[1]:g} ms)" if cb and sb else "")
             + ("" if rel is None else f", client {rel * 100:+.1f}%") + f", {ok[xc.get('p99_ok')]}"
             + (f" ({tol_b[1]} bucket)" if tol_b else "") + ".",
             f"- Requests: the client sent {c.get('total', '-')} in the run's window, Prometheus counted "
             + ("none" if s.get("total") is None else f"{s['total']:.0f}")
             + ("" if unseen is None or unseen == 0 else f": {unseen:.0f} the server never counted" if unseen > 0 else
                f": {-unseen:.0f} more on the server (requests at the window's edges: the client counts them by "
                "intended start, Prometheus when they finish)") + ".",
             "- Never seen by the server: " + (
                 f"{c.get('unanswered', sum(no_answer.values()))} request(s) got no HTTP answer ({_causes(no_answer)}); "
                 "server-side metrics cannot count them." if no_answer else "none: every request got an HTTP answer.")]
    if c.get("not_sent"):
        lines.append(f"- Not sent, never judged: {_causes(c['not_sent'])}.")
    return lines


def render(j: J, records: Sequence[ClientRecord] | None = None) -> str:
    """The report as Markdown."""
    cs, sm, exp = j.get("client_summary") or {}, summarize(j), j.get("experiment") or {}
    judged = (sm["ok"] or 0) + (sm["failed"] or 0)
    dec = max(3, math.ceil(math.log10(judged)) - 1) if judged else 3  # one request in judged shows
    verdict = str(j.get("verdict") or "unfinished").upper()
    judge = ", ".join((exp.get("steady_state") or {}).get("judge") or [])
    out = [f"# {j.get('name')}: {verdict}", ""]
    out += [f"- {_cell(r)}" for r in j.get("reasons") or []] or (
        [f"Every judged SLO held ({judge}) and every fault was injected."] if verdict == "PASSED" else [])
    out += ["", f"{sm['target']} ({(j.get('target') or {}).get('workers', '?')} workers) · backend {j.get('backend')} · "
                f"seed {j.get('seed')} · started {sm['started_utc']} · run {_n(sm['duration_s'], ' s')}, "
                f"load {_n(_span(cs.get('started_at'), cs.get('finished_at')), ' s')}", ""]
    prof, lat = (exp.get("load") or {}).get("profile") or {}, cs.get("latency_s") or {}
    out += ["## Load", "",
            f"- Profile: {prof.get('kind', '?')}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                                                for k, v in prof.items() if k != "kind")
            + f"; through {', '.join(cs.get('targets') or j.get('proxies') or ['?'])}",
            f"- Rate: intended {_n(cs.get('intended_rate_per_s'), '/s')}, achieved {_n(cs.get('achieved_rate_per_s'), '/s')}",
            f"- Requests: {cs.get('scheduled', '-')} scheduled, {cs.get('sent', '-')} sent, {cs.get('ok', '-')} ok, "
            f"{cs.get('failed', '-')} failed" + (f" ({_causes(cs['failed_by_cause'])})" if cs.get("failed_by_cause") else "")
            + (f", {cs['cancelled']} cancelled by the stop" if cs.get("cancelled") else "")
            + ("" if cs.get("complete", True) else " (INCOMPLETE: the load was stopped or a worker was lost)"),
            f"- Starts: {cs.get('retried', 0)} retried on the next proxy after a refused connection, "
            f"{cs.get('late_starts', 0)} late, {cs.get('missed_starts', 0)} missed, {cs.get('not_started', 0)} not started",
            f"- Client latency from the intended start (every sent request): p50 {_n(lat.get('p50'), ' ms', scale=1000)}, "
            f"p90 {_n(lat.get('p90'), ' ms', scale=1000)}, p99 {_n(lat.get('p99'), ' ms', scale=1000)}, max {_n(lat.get('max'), ' ms', scale=1000)}", ""]
    ok_of = f"{sm['ok']} of {judged} requests ok" if sm["availability_client"] is not None else "no requests"
    out += ["## Availability", "", f"Client-side uptime: **{pct(sm['availability_client'], dec)}** ({ok_of}). "
            f"Prometheus judges the windows {judge}; the client column is the load generator's own record of the "
            "same window (by intended start).", ""] + _window_table(j, records, dec)
    faults, recs = list(j.get("faults") or []), recoveries(j)
    out += ["", "## Faults", ""]
    if faults:
        out += ["Times count from the start of the load; *at* is when the fault command acted, *command took* "
                "includes its start-up.", ""] + _fault_table(j, faults, recs)
        rec = _first(j, "whole", "recovery") or _first(j, "during", "recovery")
        if rec:
            out += ["", f"Recovery SLO: within {rec.get('threshold', 0):g} s "
                        f"({str(rec.get('detail') or '').split(';')[0]}): worst {_n(rec.get('value'), ' s')}, "
                        f"{rec.get('verdict')}."]
    else:
        out.append("No fault was injected.")
    out += ["", "## Cross-check: client vs Prometheus", ""] + _crosscheck(j.get("crosscheck"), dec)
    aborts, rollbacks, warnings = j.get("aborts") or [], j.get("rollbacks") or [], j.get("warnings") or []
    out += ["", "## Aborts, rollbacks and warnings", ""]
    out += [f"- **Abort** at {_n(a.get('offset_s'), ' s')}: {_cell(a.get('reason'))}" for a in aborts]
    out += [f"- **Error**: {_cell(j['error'])}"] if j.get("error") else []
    out += [f"- Warning: {_cell(w)}" for w in warnings]
    if rollbacks:
        out += ["", "Rollbacks:", ""] + _fault_table(j, rollbacks, {})
    if not (aborts or rollbacks or warnings or j.get("error")):
        out.append("None.")
    return "\n".join(out) + "\n"
