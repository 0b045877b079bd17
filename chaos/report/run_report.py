"""The uptime report of a run: ``report.md`` for people, ``report.html`` (the same tables, then
plots over the run's time axis; chaos.report.html) and ``summary.json`` (the key figures, for
tests and serve_core vs Ray Serve comparisons), all beside ``journal.json``.

``write_report(journal, path)`` works on any journal (``python -m chaos report RUN_DIR``);
``ReportListener`` writes them when a run finishes. Like the journal, it is a listener on the
runner's events: the runner knows nothing of reports. Everything but the file I/O is pure; the
figures themselves are chaos.report.figures'.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from chaos.errors import ChaosError
from chaos.report.figures import (
    NOT_JUDGED,
    SUMMARY_VERSION,
    WINDOWS,
    alerts,
    causes,
    decimals,
    fault_rows,
    first_result,
    headline,
    num,
    pct,
    recoveries,
    resource_note,
    resource_rows,
    resource_verdicts,
    run_line,
    summarize,
    window_rows,
)
from chaos.report.html import render_html, resource_plots
from chaos.run.journal import JOURNAL_FILE, Event, Journal, RunFinished, RunStarted, to_plain, write_json_atomic
from chaos.slo.crosscheck import ClientRecord, read_records

__all__ = ["HTML_FILE", "REPORT_FILE", "SUMMARY_FILE", "SUMMARY_VERSION", "WINDOWS", "ReportError", "ReportListener",
           "load_run", "pct", "recoveries", "render", "render_html", "summarize", "write_report"]

REPORT_FILE, HTML_FILE, SUMMARY_FILE = "report.md", "report.html", "summary.json"
RESOURCE_SVG = "resources-{}.svg"  # memory, fds: report.md's plots
_VERDICTS = {"met": "met", "violated": "**violated**", "no_data": "no data"}
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
    """Write ``report.md``, ``report.html`` and ``summary.json`` into ``path`` (a run directory, or
    the Markdown report's file name; the HTML one takes the same name with ``.html``). Client
    records default to ``load/records.jsonl`` beside it. Returns the Markdown report's path."""
    directory, file = os.path.split(path) if path.endswith(".md") else (path, REPORT_FILE)
    directory = directory or "."
    if records is None:
        try:
            records = read_records(os.path.join(directory, "load", "records.jsonl"))
        except (OSError, ValueError):
            records = None  # moved or trimmed: the report goes without the client's figures and plots
    write_json_atomic(os.path.join(directory, SUMMARY_FILE), summarize(journal))
    for key, plot in resource_plots(journal):  # report.md shows them as images
        if plot.svg:
            _write_text(os.path.join(directory, RESOURCE_SVG.format(key)), plot.svg)
    html = os.path.join(directory, file[:-3] + ".html" if file.endswith(".md") else HTML_FILE)
    _write_text(html, render_html(journal, records))
    report = os.path.join(directory, file)
    _write_text(report, render(journal, records))
    return report


def _write_text(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class ReportListener(Journal):
    """A journal kept in memory (the Journal listener writes journal.json) that writes the reports
    into the run directory when the run finishes; ``report_path`` and ``html_path`` then name them."""

    def __init__(self) -> None:
        super().__init__("")
        self.report_path: str | None = None
        self.html_path: str | None = None

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        if isinstance(event, RunStarted):
            self.directory = event.run_dir
        elif isinstance(event, RunFinished) and self.directory:
            self.report_path = write_report(to_plain(self.doc), self.directory)
            self.html_path = os.path.join(self.directory, HTML_FILE)

    def write(self) -> None:
        pass


# -- text (pure) --------------------------------------------------------------------------------


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _window_table(j: J, records: Sequence[ClientRecord] | None, dec: int) -> list[str]:
    lines = ["| window | span (s) | SLO | objective | Prometheus | client | budget burned | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in window_rows(j, records, dec):
        if r.verdict == NOT_JUDGED:
            verdict = f"not judged ({_cell(r.detail)})"
        else:
            verdict = _cell(r.detail) if not r.verdict else _VERDICTS.get(
                r.verdict, f"**{r.verdict}**: " + textwrap.shorten(_cell(r.detail), 100, placeholder="…"))
        lines.append(f"| {r.window} | {r.span} | {_cell(r.slo)} | {r.objective} | {r.prometheus} | {r.client} | "
                     f"{r.budget} | {verdict} |")
    return lines


def _fault_table(j: J, faults: list[J], recs: dict[str, J]) -> list[str]:
    lines = ["| id | planned (s) | at (s) | action | target | fault took (s) | command took (s) | result | recovery |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in fault_rows(j, faults, recs):
        result = f"**error**: {_cell(r.error)}" if r.result == "error" else r.result
        lines.append(f"| {r.id} | {r.planned} | {r.at} | {r.action} | {_cell(r.target)} | {r.fault_took} "
                     f"| {r.command_took} | {result} | {r.recovery} |")
    return lines


def _alert_section(j: J) -> list[str]:
    a = alerts(j)
    lines = [a.note, ""] if a.note else []
    if a.rows:
        lines += ["| alert | severity | labels | fired at (s) | resolved at (s) |", "|---|---|---|---|---|"]
        lines += [f"| {r.alert} | {r.severity} | {_cell(r.labels)} | {r.fired_s:g}"
                  + (f" (pending from {r.pending_s:g})" if r.pending_s != r.fired_s else "") + " | "
                  + (f"{r.resolved_s:g}" if r.resolved_s is not None else f"still firing at the end ({num(a.end_s, ' s', 0)})")
                  + " |" for r in a.rows]
        lines.append("")
    lines += [f"- Not evaluated: {_cell(e)}" for e in a.errors]
    return lines[:-1] if lines and lines[-1] == "" else lines


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
             f"{num(xc.get('availability_diff_pp'), ' pp', 3)} apart, {ok[xc.get('availability_ok')]}"
             + (f" ({tol_pp[1]} pp)" if tol_pp else "") + ".",
             f"- p99: client {num(c.get('p99_ms'), ' ms')}, Prometheus {num(s.get('p99_ms'), ' ms')}: "
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
                 f"{c.get('unanswered', sum(no_answer.values()))} request(s) got no HTTP answer ({causes(no_answer)}); "
                 "server-side metrics cannot count them." if no_answer else "none: every request got an HTTP answer.")]
    if c.get("not_sent"):
        lines.append(f"- Not sent, never judged: {causes(c['not_sent'])}.")
    return lines


def _resource_section(j: J) -> list[str]:
    verdicts = resource_verdicts(j)
    lines = [resource_note(j, verdicts)]
    if not verdicts:
        return lines
    lines += ["", "| role | node | processes | RSS (MiB) | open fds | RSS slope | fds slope | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.role} | {r.node} | {r.processes} | {r.rss_mib} | {r.fds} | {r.rss_slope} | {r.fds_slope} | "
              + (f"**{r.verdict}**" if r.growing else r.verdict) + " |" for r in resource_rows(verdicts)]
    lines += ["", "RSS and open fds: the longest-lived process's last sample; slopes: the steepest among those "
                  "judged, with the 95% band.", ""]
    lines += [f"![{p.title}]({RESOURCE_SVG.format(key)})" for key, p in resource_plots(j, verdicts) if p.svg]
    return lines


def render(j: J, records: Sequence[ClientRecord] | None = None) -> str:
    """The report as Markdown."""
    cs, sm, exp = j.get("client_summary") or {}, summarize(j), j.get("experiment") or {}
    judged, dec = (sm["ok"] or 0) + (sm["failed"] or 0), decimals(j)
    verdict, said = headline(j)
    judge = ", ".join((exp.get("steady_state") or {}).get("judge") or [])
    out = [f"# {j.get('name')}: {verdict}", ""]
    out += [f"- {_cell(r)}" for r in j.get("reasons") or []] or said
    out += ["", run_line(j), ""]
    prof, lat = (exp.get("load") or {}).get("profile") or {}, cs.get("latency_s") or {}
    out += ["## Load", "",
            f"- Profile: {prof.get('kind', '?')}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                                                for k, v in prof.items() if k != "kind")
            + f"; through {', '.join(cs.get('targets') or j.get('proxies') or ['?'])}",
            f"- Rate: intended {num(cs.get('intended_rate_per_s'), '/s')}, achieved {num(cs.get('achieved_rate_per_s'), '/s')}",
            f"- Requests: {cs.get('scheduled', '-')} scheduled, {cs.get('sent', '-')} sent, {cs.get('ok', '-')} ok, "
            f"{cs.get('failed', '-')} failed" + (f" ({causes(cs['failed_by_cause'])})" if cs.get("failed_by_cause") else "")
            + (f", {cs['cancelled']} cancelled by the stop" if cs.get("cancelled") else "")
            + ("" if cs.get("complete", True) else " (INCOMPLETE: the load was stopped or a worker was lost)"),
            f"- Starts: {cs.get('retried', 0) - cs.get('retried_after_reset', 0)} retried on the next proxy after a "
            "refused connection, "
            + (f"{cs['retried_after_reset']} idempotent requests sent again to the next proxy after their first proxy "
               "reset them before any answer (load.retry_reset: a load balancer's retry; without it they were lost), "
               if cs.get("retried_after_reset") else "")
            + f"{cs.get('late_starts', 0)} late, {cs.get('missed_starts', 0)} missed, {cs.get('not_started', 0)} not started",
            f"- Client latency from the intended start (every sent request): p50 {num(lat.get('p50'), ' ms', scale=1000)}, "
            f"p90 {num(lat.get('p90'), ' ms', scale=1000)}, p99 {num(lat.get('p99'), ' ms', scale=1000)}, max {num(lat.get('max'), ' ms', scale=1000)}", ""]
    ok_of = f"{sm['ok']} of {judged} requests ok" if sm["availability_client"] is not None else "no requests"
    out += ["## Availability", "", f"Client-side uptime: **{pct(sm['availability_client'], dec)}** ({ok_of}). "
            f"Prometheus judges the windows {judge}; the client column is the load generator's own record of the "
            "same window (by intended start).", ""] + _window_table(j, records, dec)
    faults, recs = list(j.get("faults") or []), recoveries(j)
    out += ["", "## Faults", ""]
    if faults:
        out += ["Times count from the start of the load; *at* is when the fault command acted, *command took* "
                "includes its start-up.", ""] + _fault_table(j, faults, recs)
        rec = first_result(j, "whole", "recovery") or first_result(j, "during", "recovery")
        if rec:
            out += ["", f"Recovery SLO: within {rec.get('threshold', 0):g} s "
                        f"({str(rec.get('detail') or '').split(';')[0]}): worst {num(rec.get('value'), ' s')}, "
                        f"{rec.get('verdict')}."]
    else:
        out.append("No fault was injected.")
    out += ["", "## Alerts that would have fired", ""] + _alert_section(j)
    if j.get("resources") or (exp.get("steady_state") or {}).get("resources"):
        out += ["", "## Memory and open files", ""] + _resource_section(j)
    out += ["", "## Cross-check: client vs Prometheus", ""] + _crosscheck(j.get("crosscheck"), dec)
    aborts, rollbacks, warnings = j.get("aborts") or [], j.get("rollbacks") or [], j.get("warnings") or []
    out += ["", "## Aborts, rollbacks and warnings", ""]
    out += [f"- **Abort** at {num(a.get('offset_s'), ' s')}: {_cell(a.get('reason'))}" for a in aborts]
    out += [f"- **Error**: {_cell(j['error'])}"] if j.get("error") else []
    out += [f"- Warning: {_cell(w)}" for w in warnings]
    if rollbacks:
        out += ["", "Rollbacks:", ""] + _fault_table(j, rollbacks, {})
    if not (aborts or rollbacks or warnings or j.get("error")):
        out.append("None.")
    return "\n".join(out) + "\n"
