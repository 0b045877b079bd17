"""Panels, variables and annotations declared once, rendered as Grafana's dashboard JSON model.

A panel is a title, a unit, the metric it is about and its PromQL queries (each with a legend);
layout (grid positions), ids, the ``${datasource}`` reference and Grafana's boilerplate are
filled in here. Pure: no I/O. ``substitute`` replaces Grafana's variables in an expression the
way a test must before sending it to Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 39
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": "${" + DATASOURCE_VARIABLE + "}"}
# Grafana's own interval variables (the ones these dashboards use).
BUILTIN_VARIABLES = ("__rate_interval", "__interval", "__range")
GRID_WIDTH = 24

_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Query:
    """One target: PromQL and its legend (Grafana's ``{{label}}`` template)."""

    expr: str
    legend: str = ""
    metric: str | None = None  # the metric this target reads, when not the panel's


@dataclass(frozen=True)
class Panel:
    """A timeseries or stat panel. ``metric`` is the series it is about: every query must read it
    (checked when built) and, on a cluster under load, return at least one series of it."""

    title: str
    metric: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    kind: str = "timeseries"  # "timeseries" | "stat"
    width: int | None = None  # grid columns (of 24); default 12 for timeseries, 6 for stat
    height: int | None = None  # grid rows; default 8 for timeseries, 4 for stat
    stack: bool = False
    bars: bool = False
    min: float | None = 0.0
    max: float | None = None
    thresholds: tuple[float, ...] = ()  # lines (timeseries) or colour steps (stat): orange, the highest red
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("timeseries", "stat"):
            raise ValueError(f"panel {self.title!r}: kind {self.kind!r}; use 'timeseries' or 'stat'")
        if not self.queries:
            raise ValueError(f"panel {self.title!r} has no query; give it at least one")
        for q in self.queries:
            if not reads_metric(q.expr, q.metric or self.metric):
                raise ValueError(f"panel {self.title!r}: query {q.expr!r} does not read {q.metric or self.metric!r}; "
                                 "name the metric the query is about in Query.metric or Panel.metric")

    def metrics(self) -> list[str]:
        return list(dict.fromkeys(q.metric or self.metric for q in self.queries))


@dataclass(frozen=True)
class Row:
    """A (never collapsed) row header: starts a new line of panels."""

    title: str


@dataclass(frozen=True)
class Variable:
    """A multi-value query variable from ``label_values(...)``, "All" meaning the regex ``.*``."""

    name: str
    label: str
    query: str


@dataclass(frozen=True)
class Annotation:
    """A Prometheus annotation: every step where ``expr`` returns a series is marked."""

    name: str
    expr: str
    metric: str
    title: str  # titleFormat (``{{label}}`` templates)
    text: str = ""  # textFormat
    tags: tuple[str, ...] = ()  # labels turned into tags
    color: str = "red"
    step: str = "5s"

    def __post_init__(self) -> None:
        if not reads_metric(self.expr, self.metric):
            raise ValueError(f"annotation {self.name!r}: {self.expr!r} does not read {self.metric!r}")


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    items: tuple[Row | Panel, ...]
    variables: tuple[Variable, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    tags: tuple[str, ...] = ("serve-core",)
    refresh: str = "5s"
    time_from: str = "now-15m"
    links_tag: str = "serve-core"  # a dropdown of every dashboard with this tag

    def panels(self) -> list[Panel]:
        return [p for p in self.items if isinstance(p, Panel)]

    def to_json(self) -> dict[str, Any]:
        return {
            "annotations": {"list": [_builtin_annotation()] + [_annotation(a) for a in self.annotations]},
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": [{
                "asDropdown": True, "icon": "external link", "includeVars": True, "keepTime": True,
                "tags": [self.links_tag], "targetBlank": False, "title": "serve-core dashboards", "type": "dashboards",
            }],
            "liveNow": False,
            "panels": _layout(self.items),
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": list(self.tags),
            "templating": {"list": [_datasource_variable()] + [_query_variable(v) for v in self.variables]},
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }


# --- expressions ----------------------------------------------------------------------------


def variables_in(expr: str) -> set[str]:
    """Names of the Grafana variables (``$x``, ``${x}``, ``${x:fmt}``) in an expression."""
    return {m.group(1) or m.group(2) for m in _VARIABLE.finditer(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every Grafana variable replaced by ``values[name]``; KeyError names a missing one."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


def reads_metric(expr: str, metric: str) -> bool:
    """True if ``metric`` appears in ``expr`` as a whole metric name."""
    return any(m.group(0) == metric for m in _METRIC_NAME.finditer(expr))


# --- rendering --------------------------------------------------------------------------------


def _size(p: Panel) -> tuple[int, int]:
    if p.kind == "stat":
        return p.width or 6, p.height or 4
    return p.width or 12, p.height or 8


def _layout(items: Sequence[Row | Panel]) -> list[dict[str, Any]]:
    """Panels flowed left to right in a 24-column grid; a row starts a new line."""
    out: list[dict[str, Any]] = []
    x = y = line_height = 0
    for pid, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += line_height
            x, line_height = 0, 0
            out.append({"collapsed": False, "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "id": pid,
                        "panels": [], "title": item.title, "type": "row"})
            y += 1
            continue
        w, h = _size(item)
        if x + w > GRID_WIDTH:
            y += line_height
            x, line_height = 0, 0
        out.append(_panel(item, pid, {"h": h, "w": w, "x": x, "y": y}))
        x += w
        line_height = max(line_height, h)
    return out


def _thresholds(values: Sequence[float]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    colors = ["orange"] * (len(values) - 1) + ["red"] if values else []  # the highest threshold is red
    steps += [{"color": c, "value": v} for c, v in zip(colors, sorted(values), strict=True)]
    return {"mode": "absolute", "steps": steps}


def _targets(p: Panel) -> list[dict[str, Any]]:
    instant = p.kind == "stat"
    return [{
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": q.expr,
        "instant": instant,
        "legendFormat": q.legend or "__auto",
        "range": not instant,
        "refId": chr(ord("A") + i),
    } for i, q in enumerate(p.queries)]


def _panel(p: Panel, pid: int, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit, "thresholds": _thresholds(p.thresholds)}
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    if p.kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        options: dict[str, Any] = {
            "colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showPercentChange": False, "textMode": "auto", "wideLayout": True,
        }
    else:
        defaults["color"] = {"mode": "palette-classic"}
        defaults["custom"] = {
            "axisBorderShow": False, "axisCenteredZero": False, "axisColorMode": "text", "axisLabel": "",
            "axisPlacement": "auto", "barAlignment": 0, "drawStyle": "bars" if p.bars else "line",
            "fillOpacity": 80 if p.bars else (30 if p.stack else 10), "gradientMode": "none",
            "hideFrom": {"legend": False, "tooltip": False, "viz": False}, "insertNulls": False,
            "lineInterpolation": "linear", "lineWidth": 1, "pointSize": 4, "scaleDistribution": {"type": "linear"},
            "showPoints": "never", "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if p.stack else "none"},
            "thresholdsStyle": {"mode": "line" if p.thresholds else "off"},
        }
        options = {
            "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return {
        "datasource": dict(DATASOURCE),
        "description": p.description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": grid,
        "id": pid,
        "options": options,
        "targets": _targets(p),
        "title": p.title,
        "type": p.kind,
    }


def _builtin_annotation() -> dict[str, Any]:
    return {
        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
    }


def _annotation(a: Annotation) -> dict[str, Any]:
    return {
        "datasource": dict(DATASOURCE),
        "enable": True,
        "expr": a.expr,
        "hide": False,
        "iconColor": a.color,
        "name": a.name,
        "step": a.step,
        "tagKeys": ",".join(a.tags),
        "textFormat": a.text,
        "titleFormat": a.title,
        "useValueForTime": False,
    }


def _datasource_variable() -> dict[str, Any]:
    return {
        "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
        "hide": 0, "includeAll": False, "label": "Prometheus", "multi": False, "name": DATASOURCE_VARIABLE,
        "options": [], "query": "prometheus", "refresh": 1, "regex": "", "skipUrlSync": False, "type": "datasource",
    }


def _query_variable(v: Variable) -> dict[str, Any]:
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": dict(DATASOURCE),
        "definition": v.query,
        "hide": 0, "includeAll": True, "label": v.label, "multi": True, "name": v.name, "options": [],
        "query": {"qryType": 1, "query": v.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1, "type": "query",
    }
