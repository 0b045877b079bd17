"""Prometheus recording and alerting rules generated from SLO declarations, per backend.

Availability SLOs get multi-window, multi-burn-rate alerts (Google SRE workbook, chapter 5):
an alert fires when the error budget burns ``factor`` times faster than allowed over both a
long window (it is significant) and a short one (it is still happening). The workbook's windows
are hours; chaos runs last minutes, so the defaults are shorter and ``scale`` shrinks them
further. Latency SLOs get a threshold alert on the percentile over a short window; PromQL SLOs
an alert when their comparison fails. Recovery SLOs are judged after a run and get no alert.

Pure: returns the rule document; writing it and ``promtool check rules`` are the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from chaos.slo.queries import (
    Backend,
    SLOError,
    backend_named,
    check_slos,
    duration,
    error_ratio_query,
    latency_query,
    promql_query,
    quote,
)
from chaos.slo.spec import SLO, Availability, Latency, PromQL


@dataclass(frozen=True)
class BurnWindow:
    """Alert when the burn rate exceeds ``factor`` over both ``long_s`` and ``short_s``."""

    name: str  # "fast", "slow": the ``window`` label of the alert
    long_s: float
    short_s: float
    factor: float
    severity: str
    for_s: float = 0.0


# The workbook's: 2% of a 30-day budget in 1 h (14.4x), 5% in 6 h (6x).
SRE_WORKBOOK_WINDOWS = (
    BurnWindow("fast", 3600, 300, 14.4, "page"),
    BurnWindow("slow", 21600, 1800, 6.0, "page"),
)
# For runs of minutes: the same factors over 5m/1m and 30m/5m.
SHORT_RUN_WINDOWS = (
    BurnWindow("fast", 300, 60, 14.4, "page"),
    BurnWindow("slow", 1800, 300, 6.0, "ticket"),
)

_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!="}


def error_ratio_record(window: str) -> str:
    return f"slo:error_ratio:{window}"


def latency_record(window: str) -> str:
    return f"slo:latency_ms:{window}"


def _num(x: float) -> str:
    return f"{x:.10g}"


def _match(labels: dict[str, str]) -> str:
    return "{" + ",".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"


def alert_rules(slos: Sequence[SLO], backend: str | Backend, *, windows: Sequence[BurnWindow] = SHORT_RUN_WINDOWS,
                scale: float = 1.0, latency_window_s: float = 60.0, latency_for_s: float = 0.0,
                group: str = "slo", interval_s: float | None = None) -> dict[str, Any]:
    """The rule file (as a dict) for ``slos`` on ``backend``'s metric names.

    Every window is multiplied by ``scale`` (e.g. 0.1 turns 5m/1m into 30s/6s for a 3-minute run).
    ``interval_s`` is the group's evaluation interval; by default a quarter of the shortest window
    (at least 1 s), since Prometheus' global default of 1 m would miss short windows entirely.
    Recording rules come first in the one group: Prometheus evaluates a group's rules in order,
    so each alert sees the ratios recorded at the same evaluation.
    """
    b = backend_named(backend)
    check_slos(slos, b)
    if not scale > 0:
        raise SLOError(f"scale must be positive, got {scale}")
    for w in windows:
        if not w.long_s > w.short_s > 0 or w.factor <= 0:
            raise SLOError(f"burn window {w.name!r}: need long_s > short_s > 0 and factor > 0, got {w}")
    records: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    recorded: set[tuple[str, str]] = set()
    shortest = math.inf

    def record(name: str, expr: str, labels: dict[str, str]) -> None:
        key = (name, _match(labels))
        if key not in recorded:  # the same window may serve two burn windows
            recorded.add(key)
            records.append({"record": name, "expr": expr, "labels": dict(labels)})

    for slo in slos:
        labels = {"slo": slo.name, "backend": b.name}
        if isinstance(slo, Availability):
            budget = 1 - slo.objective
            for w in windows:
                long_s, short_s = w.long_s * scale, w.short_s * scale
                shortest = min(shortest, short_s)
                long_w, short_w = duration(long_s), duration(short_s)
                record(error_ratio_record(long_w), error_ratio_query(b, long_s, slo.route), labels)
                record(error_ratio_record(short_w), error_ratio_query(b, short_s, slo.route), labels)
                limit = _num(w.factor * budget)
                rule: dict[str, Any] = {
                    "alert": "SLOErrorBudgetBurn",
                    "expr": f"{error_ratio_record(long_w)}{_match(labels)} > {limit}"
                            f" and {error_ratio_record(short_w)}{_match(labels)} > {limit}",
                    "labels": {**labels, "window": w.name, "severity": w.severity},
                    "annotations": {
                        "summary": f"{slo.name}: error budget burning over {_num(w.factor)}x too fast ({long_w} and {short_w})",
                        "description": f"Error ratio over {long_w} is {{{{ $value | humanizePercentage }}}}; "
                                       f"objective {slo.objective} allows {_num(budget)}.",
                    },
                }
                if w.for_s:
                    rule["for"] = duration(w.for_s * scale)
                alerts.append(rule)
        elif isinstance(slo, Latency):
            shortest = min(shortest, latency_window_s * scale)
            win = duration(latency_window_s * scale)
            record(latency_record(win), latency_query(b, slo.percentile, latency_window_s * scale, slo.route),
                   {**labels, "percentile": _num(slo.percentile)})
            rule = {
                "alert": "SLOLatencyHigh",
                "expr": f"{latency_record(win)}{_match({**labels, 'percentile': _num(slo.percentile)})} > {_num(slo.threshold_ms)}",
                "labels": {**labels, "severity": "page"},
                "annotations": {
                    "summary": f"{slo.name}: p{_num(slo.percentile)} over {win} above {_num(slo.threshold_ms)} ms",
                    "description": f"p{_num(slo.percentile)} is {{{{ $value }}}} ms.",
                },
            }
            if latency_for_s:
                rule["for"] = duration(latency_for_s * scale)
            alerts.append(rule)
        elif isinstance(slo, PromQL):
            shortest = min(shortest, latency_window_s * scale)
            win = duration(latency_window_s * scale)
            alerts.append({
                "alert": "SLOViolated",
                # The query must return an instant vector here: PromQL cannot compare two scalars without bool.
                "expr": f"({promql_query(slo, latency_window_s * scale)}) {_NEGATE[slo.op]} {_num(slo.threshold)}",
                "labels": {**labels, "severity": "page"},
                "annotations": {"summary": f"{slo.name}: not ({slo.query} {slo.op} {_num(slo.threshold)}) over {win}"},
            })
    if interval_s is None:
        interval_s = max(1.0, shortest / 4) if shortest < math.inf else 15.0
    return {"groups": [{"name": group, "interval": duration(interval_s), "rules": records + alerts}]}


def alert_rules_yaml(slos: Sequence[SLO], backend: str | Backend, **options: Any) -> str:
    """``alert_rules`` as the YAML Prometheus loads (``rule_files``) and ``promtool check rules`` checks."""
    return yaml.safe_dump(alert_rules(slos, backend, **options), sort_keys=False, width=1000)
