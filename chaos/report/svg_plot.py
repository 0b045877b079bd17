"""Line plots as inline SVG, for a report that must open anywhere with no scripts, styles or
fonts from elsewhere: each series a ``<path class="series">`` (broken where a point is missing),
each marker (a fault) a ``<g class="fault">`` with a vertical line, a label and a tooltip.
Pure: returns the markup; the page around it is chaos.report.html's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

Point = tuple[float, float | None]

# Colour-blind safe (Okabe-Ito), in the order lines take them.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[Point]  # (x, y or None); None breaks the line
    color: str = PALETTE[0]
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    until: float | None = None  # a fault held for a while: shaded from x to here
    title: str = ""  # the tooltip; the label by default


@dataclass(frozen=True)
class _Frame:
    x0: float
    x1: float
    y0: float
    y1: float
    left: float
    top: float
    w: float
    h: float
    log_y: bool

    def x(self, v: float) -> float:
        return self.left + (v - self.x0) / (self.x1 - self.x0) * self.w

    def y(self, v: float) -> float:
        if self.log_y:
            a, b, v = math.log10(self.y0), math.log10(self.y1), math.log10(v)
        else:
            a, b = self.y0, self.y1
        return self.top + self.h - (v - a) / (b - a) * self.h


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten apart) covering ``[lo, hi]``."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 10) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2 and 5 times each power of ten in ``[lo, hi]`` (only the powers when they are many)."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1,) if last - first > 4 else (1, 2, 5)
    return [m * 10.0 ** e for e in range(first, last + 1) for m in steps if lo * (1 - 1e-9) <= m * 10.0 ** e <= hi * (1 + 1e-9)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.2g}"


def _y_range(lines: Sequence[Line], log_y: bool) -> tuple[float, float]:
    ys = [y for line in lines for _, y in line.points if y is not None and math.isfinite(y) and (y > 0 or not log_y)]
    if log_y:
        if not ys:
            return 1.0, 10.0
        # the 1-2-5 stops just outside the data, so no line runs along the frame
        lo, hi = min(ys) * 0.95, max(ys) * 1.05
        e_lo, e_hi = math.floor(math.log10(lo)), math.floor(math.log10(hi))
        lo = max(m * 10.0 ** e_lo for m in (1, 2, 5) if m * 10.0 ** e_lo <= lo)
        hi = min(m * 10.0 ** e for e in (e_hi, e_hi + 1) for m in (1, 2, 5) if m * 10.0 ** e >= hi)
        return lo, hi
    lo, hi = min([0.0, *ys]), max([0.0, *ys])
    if hi == lo:
        return lo, lo + 1.0
    ticks = nice_ticks(lo, hi * 1.05)  # a little headroom, up to the next round value
    step = ticks[1] - ticks[0] if len(ticks) > 1 else hi - lo
    return lo, ticks[-1] if ticks[-1] >= hi else ticks[-1] + step


def _path(line: Line, f: _Frame) -> str:
    parts: list[str] = []
    pen_up = True
    for x, y in line.points:
        if y is None or not math.isfinite(y) or (f.log_y and y <= 0) or not f.x0 <= x <= f.x1:
            pen_up = True
            continue
        y = min(max(y, f.y0), f.y1)
        parts.append(f"{'M' if pen_up else 'L'}{f.x(x):.1f} {f.y(y):.1f}")
        pen_up = False
    return " ".join(parts)


def line_plot(lines: Sequence[Line], markers: Sequence[Marker] = (), *, title: str = "", y_label: str = "",
              x_label: str = "seconds from the start of the load", x_range: tuple[float, float] | None = None,
              log_y: bool = False, integer_y: bool = False, legend_columns: int = 4, width: int = 820,
              height: int = 300) -> str:
    """An SVG line plot. Lines with no point to draw appear in the legend as "no data" and get no path.
    ``integer_y``: ticks on whole numbers only (counts)."""
    legend_rows = math.ceil(len(lines) / legend_columns) if lines else 0
    left, right, top, bottom = 64.0, 16.0, 14.0 + 16.0 * legend_rows, 40.0
    if x_range is None:
        xs = [x for line in lines for x, y in line.points if y is not None] + [m.x for m in markers]
        x_range = (min(xs, default=0.0), max(xs, default=1.0))
    x0, x1 = x_range if x_range[1] > x_range[0] else (x_range[0], x_range[0] + 1.0)
    y0, y1 = _y_range(lines, log_y)
    f = _Frame(x0, x1, y0, y1, left, top, width - left - right, height - top - bottom, log_y)
    out = [f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'font-family="sans-serif" font-size="11">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    out.append(f'<rect x="{left}" y="{top}" width="{f.w:.1f}" height="{f.h:.1f}" fill="#fff" stroke="#999"/>')
    for v in log_ticks(y0, y1) if log_y else nice_ticks(y0, y1):
        if integer_y and v != int(v):
            continue
        y = f.y(v)
        out.append(f'<line class="grid" x1="{left}" x2="{left + f.w:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    for v in nice_ticks(x0, x1, 10):
        x = f.x(v)
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + f.h:.1f}" stroke="#f0f0f0"/>'
                   f'<text x="{x:.1f}" y="{top + f.h + 14:.1f}" text-anchor="middle">{_fmt(v)}</text>')
    out.append(f'<text x="{left + f.w / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    if y_label:
        cy = top + f.h / 2
        out.append(f'<text x="14" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 14 {cy:.1f})">'
                   f"{escape(y_label)}</text>")
    for m in markers:
        if not x0 <= m.x <= x1:
            continue
        x = f.x(m.x)
        shade = ""
        if m.until is not None and m.until > m.x:
            shade = (f'<rect x="{x:.1f}" y="{top}" width="{f.x(min(m.until, x1)) - x:.1f}" height="{f.h:.1f}" '
                     'fill="#d62728" fill-opacity="0.08"/>')
        out.append(f'<g class="fault"><title>{escape(m.title or m.label)}</title>{shade}'
                   f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + f.h:.1f}" stroke="#d62728" '
                   f'stroke-dasharray="4 3"/><text x="{x + 11:.1f}" y="{top + 4}" fill="#d62728" font-size="10" '
                   f'text-anchor="end" transform="rotate(-90 {x + 11:.1f} {top + 4})">{escape(m.label)}</text></g>')
    for line in lines:
        d = _path(line, f)
        if d:
            dash = ' stroke-dasharray="6 3"' if line.dashed else ""
            out.append(f'<path class="series" d="{d}" fill="none" stroke="{line.color}" stroke-width="1.5" '
                       f'stroke-linejoin="round" stroke-linecap="round"{dash}><title>{escape(line.label)}</title></path>')
    for i, line in enumerate(lines):
        lx, ly = left + (i % legend_columns) * (f.w / legend_columns), 12.0 + 16.0 * (i // legend_columns)
        dash = ' stroke-dasharray="6 3"' if line.dashed else ""
        empty = not _path(line, f)
        color, grey, note = ("#bbb", ' fill="#888"', " (no data)") if empty else (line.color, "", "")
        out.append(f'<g class="legend"><line x1="{lx:.1f}" x2="{lx + 22:.1f}" y1="{ly - 4:.1f}" y2="{ly - 4:.1f}" '
                   f'stroke="{color}" stroke-width="2"{dash}/><text x="{lx + 27:.1f}" y="{ly:.1f}"{grey}>'
                   f"{escape(line.label)}{note}</text></g>")
    out.append("</svg>")
    return "".join(out)
