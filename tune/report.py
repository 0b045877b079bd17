"""The sweep's report: ``reports/tune/NAME-TIME/`` with ``result.json`` (everything), ``report.md``
and ``report.html`` (the frontier as an inline SVG, the recommendation with its measured
figures, the simulator's error against the real runs, the comparisons, the config snippet).
Rendering is pure; ``write_report`` is the only I/O."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import yaml

from chaos.report.svg_plot import PALETTE, nice_ticks
from tune.frontier import Point

J = dict[str, Any]


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def frontier_svg(points: Sequence[Point], frontier: Sequence[Point], met: Mapping[str, bool],
                 chosen: str | None = None, width: int = 720, height: int = 360) -> str:
    """A scatter of cost (x) against attainment (y): candidates meeting the SLOs filled, others
    hollow, the frontier as a line, the recommendation ringed."""
    left, right, top, bottom = 64.0, 16.0, 28.0, 44.0
    w, h = width - left - right, height - top - bottom
    xs = [p.cost for p in points] or [0.0, 1.0]
    ys = [p.attainment for p in points] or [0.0, 1.0]
    xt = nice_ticks(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    yt = nice_ticks(min(min(ys), 0.9), 1.0)
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], max(yt[-1], 1.0)

    def X(v: float) -> float:
        return left + (v - x0) / ((x1 - x0) or 1) * w

    def Y(v: float) -> float:
        return top + h - (v - y0) / ((y1 - y0) or 1) * h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="13">cost (replica-seconds) vs SLO attainment</text>']
    for t in xt:
        out.append(f'<line x1="{X(t):.1f}" y1="{top}" x2="{X(t):.1f}" y2="{top + h}" stroke="#ddd"/>'
                   f'<text x="{X(t):.1f}" y="{top + h + 14}" text-anchor="middle">{escape(_fmt(t))}</text>')
    for t in yt:
        out.append(f'<line x1="{left}" y1="{Y(t):.1f}" x2="{left + w}" y2="{Y(t):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 4}" y="{Y(t) + 4:.1f}" text-anchor="end">{escape(_fmt(t))}</text>')
    out.append(f'<text x="{left + w / 2}" y="{height - 8}" text-anchor="middle">replica-seconds</text>')
    if frontier:
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(p.cost):.1f},{Y(p.attainment):.1f}" for i, p in enumerate(frontier))
        out.append(f'<path class="frontier" d="{d}" fill="none" stroke="{PALETTE[1]}" stroke-width="1.5"/>')
    for p in points:
        fill = PALETTE[0] if met.get(p.key) else "none"
        out.append(f'<circle class="candidate" cx="{X(p.cost):.1f}" cy="{Y(p.attainment):.1f}" r="4" fill="{fill}" '
                   f'stroke="{PALETTE[0]}"><title>{escape(p.key)}: {p.cost:.0f} replica-s, '
                   f'{p.attainment:.4f}</title></circle>')
        if p.key == chosen:
            out.append(f'<circle class="chosen" cx="{X(p.cost):.1f}" cy="{Y(p.attainment):.1f}" r="8" fill="none" '
                       f'stroke="{PALETTE[2]}" stroke-width="2"/>')
    out.append("</svg>")
    return "\n".join(out)


def snippet(config: Mapping[str, Any]) -> str:
    """The serve config of the recommendation, to paste into serve-core deploy's YAML."""
    return yaml.safe_dump(dict(config), sort_keys=False)


def _fig_row(name: str, f: Mapping[str, Any] | None, where: str) -> str:
    if not f:
        return f"| {name} | {where} | - | - | - | - | - | - |"
    return (f"| {name} | {where} | {_fmt(f.get('replica_seconds'), 4)} | {_fmt(f.get('cpu_seconds'), 4)} | "
            f"{_fmt(f.get('availability'), 5)} | {_ms(f.get('p99_s'))} | {_fmt(f.get('attainment'), 5)} | "
            f"{'yes' if f.get('all_met') else 'no'} |")


def render_md(r: J) -> str:
    head = "| setting | run | replica-s | CPU-s | availability | p99 | attainment | SLOs met |\n|---|---|---:|---:|---:|---:|---:|---|"
    rec = r.get("recommendation") or {}
    lines = [f"# Tuning sweep {r['name']}", "", r.get("description") or "", "",
             f"- started {r['started_utc']}, {r['candidates']} settings simulated in {r['simulated_s']:.1f} s "
             f"(search {r['search']}, seed {r['seed']}), {len(r.get('real_runs') or [])} real run(s)",
             f"- load: {r['load']}; SLOs: {'; '.join(r['slos'])}", ""]
    lines += ["## Recommendation", ""]
    if rec:
        lines += [f"**{rec['label']}** ({rec['basis']}): " + ", ".join(f"{k}={_fmt(v)}" for k, v in rec["values"].items()), "",
                  head, _fig_row(rec["label"], rec.get("simulated"), "simulated"),
                  _fig_row(rec["label"], rec.get("measured"), "real"), "",
                  "Paste into the serve config (`serve-core deploy`):", "", "```yaml", rec["snippet"].rstrip(), "```", ""]
    else:
        lines += ["No setting met every SLO in the simulator; widen the ranges or relax the SLOs.", ""]
    lines += ["## Frontier (simulated)", "", "| setting | replica-s | attainment | SLOs met | values |", "|---|---:|---:|---|---|"]
    for p in r.get("frontier") or []:
        lines.append(f"| {p['label']} | {p['cost']:.0f} | {p['attainment']:.5f} | {'yes' if p['met'] else 'no'} | "
                     + ", ".join(f"{k}={_fmt(v)}" for k, v in p["values"].items()) + " |")
    real = r.get("real_runs") or []
    if real:
        lines += ["", "## Real runs and the simulator's error", "", head]
        for x in real:
            lines += [_fig_row(f"{x['label']} ({x['backend']})", x.get("simulated"), "simulated"),
                      _fig_row(f"{x['label']} ({x['backend']})", x.get("measured"), f"real: {x['verdict']}")]
        lines += ["", "| setting | replica-s predicted/real | p99 predicted/real | availability diff | run |", "|---|---:|---:|---:|---|"]
        for x in real:
            e = x.get("error_vs_real") or {}
            lines.append(f"| {x['label']} ({x['backend']}) | {_fmt(e.get('replica_seconds_ratio'))} | "
                         f"{_fmt(e.get('p99_ratio'))} | {_fmt(e.get('availability_diff'))} | {x.get('run_dir') or x.get('error')} |")
        s = r.get("simulator_error") or {}
        lines += ["", f"Mean |ln(predicted/real)|: replica-seconds {_fmt(s.get('replica_seconds'))}, "
                      f"p99 {_fmt(s.get('p99'))} (0 is exact, 0.69 is 2x)."]
    cmp = r.get("comparisons") or []
    if cmp:
        lines += ["", "## Compared with the defaults and a fixed count", "", head]
        for c in cmp:
            lines += [_fig_row(c["label"], c.get("simulated"), "simulated")]
            if c.get("measured") or c.get("verdict"):
                lines += [_fig_row(c["label"], c.get("measured"), f"real: {c.get('verdict')}")]
    return "\n".join(lines) + "\n"


def render_html(r: J, svg: str) -> str:
    md = render_md(r)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + escape(f"tune {r['name']}") +
            "</title></head><body style='font-family:sans-serif;max-width:1000px;margin:auto'>" +
            f"<h1>Tuning sweep {escape(r['name'])}</h1>" + svg + "<pre>" + escape(md) + "</pre></body></html>\n")


def write_report(r: J, svg: str, out_root: str = "reports/tune", now: float | None = None) -> str:
    """Write the report directory; returns its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    path = os.path.join(out_root, f"{r['name']}-{stamp}")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "result.json"), "w") as f:
        json.dump(r, f, indent=1, default=str)
    with open(os.path.join(path, "report.md"), "w") as f:
        f.write(render_md(r))
    with open(os.path.join(path, "report.html"), "w") as f:
        f.write(render_html(r, svg))
    return path
