"""A campaign's report: ``campaign.json`` (everything chaos.campaign.campaign recorded) and ``report.md``
beside it, rewritten after every step so a long campaign can be read while it runs. One table
row per run (verdict, requests, failures, a link to the run's own report, the health check
after it), then every finding, then the processes, memory and open files of each role at each
check. ``render`` is pure.
"""

from __future__ import annotations

import os
import time
from typing import Any

from chaos.run.journal import write_json_atomic

CAMPAIGN_FILE, REPORT_FILE = "campaign.json", "report.md"
J = dict[str, Any]


def write_campaign(directory: str, doc: J) -> str:
    """Write campaign.json and report.md into ``directory``; the report's path."""
    os.makedirs(directory, exist_ok=True)
    write_json_atomic(os.path.join(directory, CAMPAIGN_FILE), doc)
    path = os.path.join(directory, REPORT_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(render(doc))
    os.replace(path + ".tmp", path)
    return path


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:g}"


def _health_cell(h: J | None) -> str:
    if h is None:
        return "-"
    took = f" ({h.get('took_s', 0):.0f} s)"
    if h.get("healthy"):
        return "healthy" + took
    findings = h.get("findings") or []
    first = findings[0] if findings else {}
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"**{len(findings)} finding(s)**{took}: {_cell(first.get('check'))}: {_cell(first.get('message'))}{more}"


def _checks(doc: J) -> list[tuple[str, J]]:
    out = [("before", doc["baseline"])] if doc.get("baseline") else []
    out += [(f"after {r['index']}", r["health"]) for r in doc.get("runs") or [] if r.get("health")]
    return out


def headline(doc: J) -> str:
    runs = doc.get("runs") or []
    done = [r for r in runs if r.get("verdict") != "skipped"]
    passed = sum(1 for r in done if r.get("verdict") == "passed")
    checks = _checks(doc)
    unhealthy = sum(1 for _, h in checks if not h.get("healthy"))
    health = "healthy at every check" if checks and not unhealthy else f"findings at {unhealthy} of {len(checks)} checks"
    return f"{passed} of {len(runs)} runs passed" + (f" ({len(runs) - len(done)} not run)" if len(done) < len(runs) else "") \
        + f"; cluster {health}"


def render(doc: J) -> str:
    """The campaign's report.md from its document. Pure."""
    started, ended = doc.get("started"), doc.get("ended")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if started else "-"
    took = f"{(ended - started) / 60:.1f} min" if started and ended else "-"
    lines = [f"# Campaign {doc.get('name')}: {str(doc.get('verdict') or 'running').upper()}", ""]
    if doc.get("description"):
        lines += [str(doc["description"]).strip(), ""]
    lines += [f"{headline(doc)}.", "",
              f"Target `{doc.get('target')}`, started {when}, took {took}; on a failed run or check: "
              f"{doc.get('on_failure')}. File: `{doc.get('source')}`.", ""]
    if doc.get("stopped"):
        lines += [f"**Stopped early**: {doc['stopped']}.", ""]
    if doc.get("interrupted"):
        lines += ["**Interrupted** (Ctrl-C): the runs after it did not happen.", ""]
    lines += ["| # | experiment | backend | seed | verdict | requests | failed | took | report | health check after |",
              "|---|---|---|---|---|---|---|---|---|---|",
              f"| - | (before the first run) | | | | | | | | {_health_cell(doc.get('baseline'))} |"]
    for r in doc.get("runs") or []:
        report = f"[report]({r['report']})" if r.get("report") else (f"`{r['run_dir']}`" if r.get("run_dir") else "-")
        verdict = r.get("verdict") or "-"
        verdict = verdict if verdict in ("passed", "skipped") else f"**{verdict}**"
        took_s = f"{r['took_s']:.0f} s" if r.get("took_s") is not None else "-"
        lines.append(f"| {r['index']} | {_cell(r['name'])} | {r.get('backend')} | {r.get('seed')} | {verdict} | "
                     f"{_num(r.get('sent'))} | {_num(r.get('failed'))} | {took_s} | {report} | "
                     f"{_health_cell(r.get('health'))} |")
    lines.append("")
    failed = [r for r in doc.get("runs") or [] if r.get("reasons")]
    if failed:
        lines += ["## Why runs did not pass", ""]
        for r in failed:
            lines += [f"- {r['index']}. {r['name']}: " + "; ".join(_cell(x) for x in r["reasons"])]
        lines.append("")
    lines += _findings(doc) + _figures(doc) + _bounds(doc)
    return "\n".join(lines).rstrip() + "\n"


def _findings(doc: J) -> list[str]:
    lines = ["## Health checks", ""]
    for label, h in _checks(doc):
        name = label if label == "before" else f"{label} ({_run_name(doc, label)})"
        findings, skipped = h.get("findings") or [], h.get("skipped") or []
        probe = h.get("probe") or {}
        steps = ", ".join(f"{k} {v:.0f}" for k, v in (h.get("timings") or {}).items())
        probe_text = f"; the probe deployed in {probe['deploy_s']:.1f} s" if probe.get("deploy_s") is not None else ""
        lines.append(f"- **{name}**: " + ("healthy" if not findings else f"{len(findings)} finding(s)")
                     + f" (took {h.get('took_s', 0):.0f} s" + (f": {steps}" if steps else "") + f"{probe_text})")
        lines += [f"  - {_cell(f['check'])}: {_cell(f['message'])}" for f in findings]
        lines += [f"  - not checked: {_cell(s)}" for s in skipped]
    return lines + [""]


def _run_name(doc: J, label: str) -> str:
    index = int(label.split()[-1])
    return next((r["name"] for r in doc.get("runs") or [] if r["index"] == index), "?")


def _figures(doc: J) -> list[str]:
    checks = [(label, h) for label, h in _checks(doc) if h.get("usage")]
    if not checks:
        return []
    roles = sorted({role for _, h in checks for role in h["usage"]})
    lines = ["## Processes, memory and open files", "",
             "Per role at each check: processes, largest RSS of one process (MiB), most open files of one process.", "",
             "| role | " + " | ".join(label for label, _ in checks) + " |", "|---|" + "---|" * len(checks)]
    for role in roles:
        cells = []
        for _, h in checks:
            u = h["usage"].get(role)
            cells.append("-" if u is None else f"{int(u['count'])} / {u['max_rss_mib']:.0f} / {int(u['max_fds'])}")
        lines.append(f"| {role} | " + " | ".join(cells) + " |")
    totals = [sum(u["total_rss_mib"] for u in h["usage"].values()) for _, h in checks]
    lines.append("| **all (total RSS MiB)** | " + " | ".join(f"{t:,.0f}" for t in totals) + " |")
    return lines + [""]


def _bounds(doc: J) -> list[str]:
    b = doc.get("health_bounds") or {}
    if not b:
        return []
    def per_role(table: Any, unit: str = "") -> str:
        return ", ".join(f"{role} {_num(v)}{unit}" for role, v in (table or {}).items()) or "-"

    return ["## Bounds", "",
            f"Settle {_num(b.get('settle_s'))} s; the probe application {'deployed at each check' if b.get('probe') else 'off'}; "
            f"largest RSS per role: {per_role(b.get('max_rss_mib'), ' MiB')}; most open files per role: "
            f"{per_role(b.get('max_open_fds'))}; growth between checks at most {_num(b.get('max_rss_growth_mib'))} MiB and "
            f"{_num(b.get('max_fds_growth'))} files per process; processes tolerated above the count before the "
            f"campaign: {per_role(b.get('extra_processes'))}.", ""]
