"""``report.html``: one self-contained page (no scripts, no styles or fonts from elsewhere) with
the verdict, the SLO table with each SLO's error budget burned, the faults and their time to
recover, the alerts that would have fired, then plots over the run's time axis with every fault
marked: requests and errors per second, latency percentiles, replicas per deployment.

The figures are chaos.report.figures' (the same as report.md's); the client's side of the plots is
its records binned per second, the server's side and the replicas are the Prometheus series the
runner journaled (``series``). A plot, or one side of it, with no data says why. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from chaos.report.figures import (
    NOT_JUDGED,
    alerts,
    decimals,
    fault_at,
    fault_rows,
    headline,
    load_start,
    num,
    pct,
    recoveries,
    recovery_text,
    resource_note,
    resource_rows,
    resource_verdicts,
    run_line,
    summarize,
    target_text,
    window_rows,
)
from chaos.report.svg_plot import PALETTE, Line, Marker, line_plot
from chaos.run.resources import MIB, SeriesVerdict
from chaos.slo.crosscheck import ClientRecord
from chaos.slo.queries import BACKENDS
from chaos.slo.timeseries import PERCENTILES, PLOT_WINDOW_S, bin_records, entry_series

J = dict[str, Any]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222;line-height:1.4}
h1 .verdict{padding:.1em .4em;border-radius:.2em;color:#fff}
.PASSED{background:#2e7d32}.FAILED{background:#c62828}.ABORTED{background:#e65100}.UNFINISHED{background:#666}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.pass{color:#2e7d32;font-weight:600}td.fail{color:#c62828;font-weight:600}td.unknown{color:#777}
.missing{color:#a15c00;background:#fff6e5;padding:.4em .6em;border-left:3px solid #e69f00}
.note{color:#555;font-size:.9em}
svg.plot{max-width:100%;height:auto}
"""
_VERDICT_CELL = {"met": ("pass", "pass"), "violated": ("fail", "fail"), "no_data": ("unknown", "no data")}


@dataclass(frozen=True)
class Plot:
    title: str
    svg: str | None  # None: nothing to draw, ``notes`` say why
    notes: list[str] = field(default_factory=list)


def _table(head: Sequence[str], rows: Sequence[Sequence[str | tuple[str, str]]]) -> str:
    """Cells are text, or (css class, text)."""
    def cell(c: str | tuple[str, str]) -> str:
        return f'<td class="{c[0]}">{escape(c[1])}</td>' if isinstance(c, tuple) else f"<td>{escape(c)}</td>"
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows) + "</table>")


def _why_no_series(j: J, name: str) -> str | None:
    """Why the journal has no usable Prometheus series ``name``, or None when it has."""
    series = j.get("series")
    if not series:
        return ("the journal has no Prometheus series (the run ended before its SLOs were judged, or was recorded "
                "before series were collected)")
    if series.get("error"):
        return str(series["error"])
    e = (series.get("plots") or {}).get(name)
    if e is None:
        return f"{name} was not collected"
    if e.get("error"):
        return str(e["error"])
    if not any(p[1] is not None for s in e.get("series") or [] for p in s.get("points") or []):
        return f"Prometheus had no data for {e.get('query')}"
    return None


def _server_points(j: J, name: str, t0: float) -> list[list[tuple[float, float | None]]]:
    e = ((j.get("series") or {}).get("plots") or {}).get(name)
    return [] if e is None or e.get("error") else [[(t - t0, v) for t, v in s.points] for s in entry_series(e)]


def _markers(j: J) -> list[Marker]:
    t0, recs, out = load_start(j), recoveries(j), []
    for f in j.get("faults") or []:
        at = fault_at(f)
        if at is None:
            continue
        ended = f.get("ended")
        held = ended is not None and f.get("started") is not None and ended - f["started"] >= 1.0
        label = f"{f.get('id')} {f.get('action')}"
        rec = recovery_text(recs.get(str(f.get("id"))))
        title = f"{label} on {target_text(f)} at {at - t0:.2f} s" + ("" if rec == "-" else f"; recovery {rec}")
        out.append(Marker(round(at - t0, 3), label, round(ended - t0, 3) if held else None, title))
    return out


def _x_end(j: J) -> float:
    t0, series = load_start(j), j.get("series") or {}
    whole = (j.get("steady_state") or {}).get("whole") or {}
    ss = (j.get("experiment") or {}).get("steady_state") or {}
    planned = sum(float(ss.get(k) or 0.0) for k in ("before_s", "during_s", "after_s"))
    for end in (series.get("end"), whole.get("end")):
        if end is not None:
            return max(1.0, float(end) - t0)
    return max(1.0, planned or float(j.get("end") or t0 + 1.0) - t0)


def plots(j: J, records: Sequence[ClientRecord] | None) -> list[Plot]:
    """The three plots: requests and errors per second, latency percentiles, replicas per deployment."""
    t0, x_end = load_start(j), _x_end(j)
    markers, x_range = _markers(j), (0.0, x_end)
    bins = bin_records(records, t0, t0 + x_end) if records else None
    no_client = None if records else "client: no records (load/records.jsonl is not beside the journal)"

    def server(names: Sequence[str]) -> list[str]:
        """Why each of these series is missing, one line per cause."""
        by_why: dict[str, list[str]] = {}
        for n in names:
            if (why := _why_no_series(j, n)) is not None:
                by_why.setdefault(why.removeprefix("not queried: "), []).append(n)
        return [f"server {', '.join(ns)}: {why}" for why, ns in by_why.items()]

    # (a) requests and errors per second
    lines: list[Line] = []
    if bins:
        lines += [Line("client sent/s", list(zip(bins.t, bins.sent_per_s, strict=True)), PALETTE[0]),
                  Line("client errors/s", list(zip(bins.t, bins.errors_per_s, strict=True)), PALETTE[1])]
    for name, label, color in (("requests", "server requests/s", PALETTE[0]), ("errors", "server errors/s", PALETTE[1])):
        lines += [Line(label, pts, color, dashed=True) for pts in _server_points(j, name, t0)]
    notes = [n for n in [no_client] if n] + server(["requests", "errors"])
    out = [_plot("Requests and errors per second", lines, markers, x_range, "requests/s", notes, legend_columns=2)]

    # (b) latency percentiles
    lines = [Line(f"client p{p}", list(zip(bins.t, bins.latency_ms[p], strict=True)), PALETTE[2 + i])
             for i, p in enumerate(PERCENTILES)] if bins else []
    lines += [Line(f"server p{p}", pts, PALETTE[2 + i], dashed=True)
              for i, p in enumerate(PERCENTILES) for pts in _server_points(j, f"p{p}", t0)]
    notes = [n for n in [no_client] if n] + server([f"p{p}" for p in PERCENTILES])
    out.append(_plot("Latency percentiles (ms, log scale)", lines, markers, x_range, "ms", notes, log_y=True,
                     legend_columns=len(PERCENTILES)))

    # (c) replicas per deployment
    backend = BACKENDS.get(str(j.get("backend")))
    if backend is not None and backend.replicas is None:
        notes = [f"backend {backend.name} has no replica gauge"]
        lines = []
    else:
        e = ((j.get("series") or {}).get("plots") or {}).get("replicas")
        lines = [Line(f"{s.labels.get('application', '?')}/{s.labels.get('deployment', '?')}",
                      [(t - t0, v) for t, v in s.points], PALETTE[i % len(PALETTE)])
                 for i, s in enumerate(entry_series(e))]
        notes = server(["replicas"])
    out.append(_plot("Replicas per deployment (Prometheus)", lines, markers, x_range, "replicas", notes, integer_y=True))
    return out


RESOURCE_PLOTS = (("memory", "Memory (RSS, MiB) per process, by role", "MiB"),
                  ("fds", "Open files per process, by role", "open fds"))


def resource_plots(j: J, verdicts: Sequence[SeriesVerdict] | None = None) -> list[tuple[str, Plot]]:
    """Memory and open files over the run: one line per role, each process a stretch of its own
    (broken where one ends: a killed replica's successor is a new stretch). Empty without samples."""
    verdicts = resource_verdicts(j) if verdicts is None else verdicts
    if not verdicts:
        return []
    t0, markers, x_range = load_start(j), _markers(j), (0.0, _x_end(j))
    roles: dict[str, list[SeriesVerdict]] = {}
    for v in verdicts:  # in the report's role order
        roles.setdefault(v.series.role, []).append(v)
    out = []
    for key, title, unit in RESOURCE_PLOTS:
        lines = []
        for i, (role, vs) in enumerate(roles.items()):
            points: list[tuple[float, float | None]] = []
            for v in sorted(vs, key=lambda v: v.series.points[0][0]):
                points += [(t - t0, rss / MIB if key == "memory" else float(fds)) for t, rss, fds in v.series.points]
                points.append((v.series.points[-1][0] - t0, None))
            lines.append(Line(f"{role} ({len(vs)})", points, PALETTE[i % len(PALETTE)], dashed=i >= len(PALETTE)))
        out.append((key, _plot(title, lines, markers, x_range, unit, [], legend_columns=4)))
    return out


def resource_section(j: J) -> list[str]:
    """The memory and open files section: how it was judged, the table per role and node, the plots."""
    verdicts = resource_verdicts(j)
    body = ["<h2>Memory and open files</h2>", f'<p class="note">{escape(resource_note(j, verdicts))}</p>']
    if not verdicts:
        return body
    body.append(_table(["role", "node", "processes", "RSS (MiB)", "open fds", "RSS slope", "fds slope", "verdict"], [
        [r.role, r.node, str(r.processes), r.rss_mib, r.fds, r.rss_slope, r.fds_slope,
         ("unknown", r.verdict) if r.growing is None else ("fail" if r.growing else "pass", r.verdict)]
        for r in resource_rows(verdicts)]))
    for _, p in resource_plots(j, verdicts):
        body.append(f"<section><h3>{escape(p.title)}</h3>" + (p.svg or f'<p class="missing">Plot missing: '
                                                                 f'{escape("; ".join(p.notes))}</p>') + "</section>")
    return body


def _plot(title: str, lines: list[Line], markers: list[Marker], x_range: tuple[float, float], y_label: str,
          notes: list[str], **options: Any) -> Plot:
    if not any(y is not None for line in lines for _, y in line.points):
        return Plot(title, None, notes or ["no data"])
    return Plot(title, line_plot(lines, markers, title=title, y_label=y_label, x_range=x_range, **options), notes)


def render_html(j: J, records: Sequence[ClientRecord] | None = None) -> str:
    """The report as one HTML page."""
    verdict, said = headline(j)
    sm, dec, cs = summarize(j), decimals(j), j.get("client_summary") or {}
    name = escape(str(j.get("name")))
    body = [f'<h1>{name}: <span class="verdict {escape(verdict)}">{escape(verdict)}</span></h1>']
    body.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in said) + "</ul>" if said else "")
    judged = (sm["ok"] or 0) + (sm["failed"] or 0)
    causes = ", ".join(f"{k}: {v}" for k, v in sorted((sm["failed_by_cause"] or {}).items()))
    body.append(f'<p class="note">{escape(run_line(j))}</p>'
                f"<p>Client-side uptime <b>{escape(pct(sm['availability_client'], dec))}</b> "
                f"({sm['ok'] or 0} of {judged} requests ok{escape(f'; failed: {causes}' if causes else '')}); "
                f"achieved {escape(num(cs.get('achieved_rate_per_s'), '/s'))} of "
                f"{escape(num(cs.get('intended_rate_per_s'), '/s'))} intended. Times count in seconds from the "
                "start of the load.</p>")

    body.append("<h2>Steady state</h2>")
    rows: list[list[str | tuple[str, str]]] = []
    for r in window_rows(j, records, dec):
        if r.verdict == NOT_JUDGED:
            css, text = "unknown", f"not judged ({r.detail})"
        else:
            css, text = _VERDICT_CELL.get(r.verdict, ("fail" if r.verdict else "unknown", f"{r.verdict}: {r.detail}"
                                                      if r.verdict else r.detail))
        rows.append([r.window, r.span, r.slo, r.objective, r.prometheus, r.client, r.budget, (css, text)])
    body.append(_table(["window", "span (s)", "SLO", "objective", "Prometheus", "client", "error budget burned",
                        "verdict"], rows))

    body.append("<h2>Faults</h2>")
    faults = list(j.get("faults") or [])
    if faults:
        frows: list[list[str | tuple[str, str]]] = [
            [r.id, r.planned, r.at, r.action, r.target, r.fault_took,
             ("fail", f"error: {r.error}") if r.result == "error" else r.result,
             ("unknown", r.recovery) if r.recovered is None else ("pass" if r.recovered else "fail", r.recovery)]
            for r in fault_rows(j, faults, recoveries(j))]
        body.append(_table(["id", "planned (s)", "at (s)", "action", "target", "fault took (s)", "result",
                            "time to recover"], frows))
    else:
        body.append("<p>No fault was injected.</p>")

    body.append("<h2>Alerts that would have fired</h2>")
    a = alerts(j)
    body.append(f'<p class="note">{escape(a.note)}</p>' if a.note else "")
    if a.rows:
        body.append(_table(["alert", "severity", "labels", "pending from (s)", "fired at (s)", "resolved at (s)"], [
            [r.alert, r.severity, r.labels, f"{r.pending_s:g}", ("fail", f"{r.fired_s:g}"),
             f"{r.resolved_s:g}" if r.resolved_s is not None else ("fail", f"still firing at the end ({num(a.end_s, ' s', 0)})")]
            for r in a.rows]))
    body += [f'<p class="missing">Not evaluated: {escape(e)}</p>' for e in a.errors]

    body.append("<h2>Over time</h2>")
    for p in plots(j, records):
        body.append(f"<section><h3>{escape(p.title)}</h3>")
        if p.svg is None:
            body.append(f'<p class="missing">Plot missing: {escape("; ".join(p.notes))}</p>')
        else:
            body.append(p.svg + "".join(f'<p class="missing">Part missing: {escape(n)}</p>' for n in p.notes))
        body.append("</section>")
    window = (j.get("series") or {}).get("window_s") or PLOT_WINDOW_S
    body.append('<p class="note">Solid: the client (per second, by intended start; latency from the intended start). '
                f"Dashed: Prometheus (over the last {window:g} s). Red dashed lines: faults, shaded while held.</p>")

    if j.get("resources") or ((j.get("experiment") or {}).get("steady_state") or {}).get("resources"):
        body += resource_section(j)

    extra = _extras(j)
    if extra:
        body.append("<h2>Aborts, errors and warnings</h2><ul>" + "".join(f"<li>{escape(x)}</li>" for x in extra) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{name}: {escape(verdict)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(b for b in body if b) + "\n</body></html>\n")


def _extras(j: Mapping[str, Any]) -> list[str]:
    out = [f"Abort at {num(a.get('offset_s'), ' s')}: {a.get('reason')}" for a in j.get("aborts") or []]
    out += [f"Error: {j['error']}"] if j.get("error") else []
    return out + [f"Warning: {w}" for w in j.get("warnings") or []]
