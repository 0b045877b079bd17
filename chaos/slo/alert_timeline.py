"""Which of the SLO alerts (chaos.slo.alerts) would have fired during a run, from when to when.

The rules are not loaded into the run's Prometheus, so each alert's condition is queried with
its recording rules inlined (``expand``): ``slo:error_ratio:30s{slo="availability",...}`` becomes
that rule's expression, its labels put back with ``label_replace`` so that ``and``/``or`` and the
alert's labels match as they would on recorded series. A range query of the condition stepped
at the group's interval is what the rule manager would have evaluated; ``firing_intervals``
works out the states as Prometheus does: pending on the first evaluation that returns a series,
firing once it has held for the alert's ``for:``, resolved on the first evaluation without it.

Pure: the caller runs the queries (chaos.slo.timeseries.collect) and hands the results back.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.slo.queries import quote

DEFAULT_INTERVAL_S = 60.0  # Prometheus' global evaluation_interval when a group sets none
_MAX_DEPTH = 10

_STR = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_MATCHER = re.compile(rf"([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*({_STR})")
_MATCHERS = rf"\{{\s*(?:[A-Za-z_]\w*\s*(?:=~|!~|!=|=)\s*(?:{_STR})\s*,?\s*)*\}}"
# A string (skipped), or a metric name with its matchers and whatever modifies the selector.
_TOKEN = re.compile(rf"(?P<str>{_STR})|(?<![\w:.])(?P<name>[A-Za-z_:][\w:]*)(?P<matchers>\s*{_MATCHERS})?"
                    r"(?P<after>\s*[\[@]|\s+offset\b)?")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


class AlertExpansionError(ValueError):
    """A rule whose recording rules cannot be inlined (the message names the selector and why)."""


def parse_duration(text: Any) -> float:
    """A Prometheus duration (``"1m30s"``, ``"1500ms"``; a bare number is seconds) in seconds."""
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    if not s or _DURATION.sub("", s):
        raise AlertExpansionError(f"not a Prometheus duration: {text!r} (e.g. 30s, 1m30s, 1500ms)")
    return sum(int(n) * _UNIT_S[u] for n, u in _DURATION.findall(s))


def _unquote(s: str) -> str:
    return s[1:-1] if s.startswith("`") else str(ast.literal_eval(s))


def _matches(op: str, actual: str, value: str) -> bool:
    if op in ("=", "!="):
        return (actual == value) == (op == "=")
    return (re.fullmatch(value, actual) is not None) == (op == "=~")


def expand(expr: str, records: Sequence[Mapping[str, Any]], _depth: int = 0) -> str:
    """``expr`` with every selector of a recording rule (``records``: rules with ``record``, ``expr``
    and ``labels``) replaced by that rule's expression, recursively. Selectors of anything else,
    and string literals, are left alone."""
    if _depth > _MAX_DEPTH:
        raise AlertExpansionError(f"recording rules refer to each other more than {_MAX_DEPTH} deep (a loop?)")
    names = {str(r["record"]) for r in records}

    def replace(m: re.Match[str]) -> str:
        name = m["name"]
        if name is None or name not in names:
            return m[0]
        selector = name + (m["matchers"] or "")
        if m["after"]:
            raise AlertExpansionError(f"cannot inline {selector}: a range, offset or @ on a recorded series has "
                                      "no inline equivalent here; load the rules instead")
        wanted = [(k, op, _unquote(v)) for k, op, v in _MATCHER.findall(m["matchers"] or "")]
        parts = []
        for r in records:
            if r["record"] != name:
                continue
            labels = {str(k): str(v) for k, v in (r.get("labels") or {}).items()}
            unknown = [k for k, _, _ in wanted if k != "__name__" and k not in labels]
            if unknown:
                raise AlertExpansionError(f"cannot inline {selector}: the matcher on {unknown[0]!r} needs the labels "
                                          f"the expression produces, and rule {name} sets only {sorted(labels)}")
            if all(_matches(op, name if k == "__name__" else labels[k], v) for k, op, v in wanted):
                inner = f"({expand(str(r['expr']), records, _depth + 1)})"
                for k, v in labels.items():  # "$" would start a reference in label_replace's replacement
                    inner = f'label_replace({inner}, {quote(k)}, {quote(v.replace("$", "$$"))}, "", "")'
                parts.append(inner)
        if not parts:
            raise AlertExpansionError(f"no recording rule {name} matches {selector}: the alert could never fire")
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    return _TOKEN.sub(replace, expr)


@dataclass(frozen=True)
class AlertCondition:
    """One alerting rule, ready to be queried: ``query`` is ``expr`` with its recording rules inlined."""

    key: str  # unique within the rules: the alert's name and labels
    alert: str
    labels: Mapping[str, str]
    for_s: float
    step_s: float  # its group's evaluation interval
    expr: str
    query: str


def alert_conditions(rules: Mapping[str, Any]) -> list[AlertCondition]:
    """Every alert of a rule document (``{"groups": [...]}``, as chaos.slo.alerts returns it)."""
    groups = list(rules.get("groups") or [])
    records = [r for g in groups for r in g.get("rules") or [] if "record" in r]
    out: list[AlertCondition] = []
    keys: set[str] = set()
    for g in groups:
        step = parse_duration(g["interval"]) if g.get("interval") else DEFAULT_INTERVAL_S
        for r in g.get("rules") or []:
            if "alert" not in r:
                continue
            labels = {str(k): str(v) for k, v in (r.get("labels") or {}).items()}
            key = str(r["alert"]) + "{" + ",".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"
            n = 2
            while key in keys:  # two rules alike: keep both apart
                key, n = f"{key.split('#')[0]}#{n}", n + 1
            keys.add(key)
            out.append(AlertCondition(key, str(r["alert"]), labels, parse_duration(r.get("for") or 0), step,
                                      str(r["expr"]), expand(str(r["expr"]), records)))
    return out


# -- the timeline (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """One alert firing: the condition held from ``pending_at``, for long enough by ``fired_at``."""

    alert: str
    labels: Mapping[str, str]
    pending_at: float
    fired_at: float
    resolved_at: float | None  # None: still firing at the end of the window

    @property
    def severity(self) -> str | None:
        return self.labels.get("severity")


def firing_intervals(times: Sequence[float], held: Sequence[bool], for_s: float) -> list[tuple[float, float, float | None]]:
    """``(pending_at, fired_at, resolved_at or None)`` from the evaluations at ``times`` (ascending)
    and whether the condition returned the series at each. A condition that stops holding before
    ``for_s`` has passed never fires."""
    out: list[tuple[float, float, float | None]] = []
    active: float | None = None
    fired: float | None = None
    for t, h in zip(times, held, strict=True):
        if h:
            active = t if active is None else active
            if fired is None and t - active >= for_s - 1e-9:
                fired = t
        else:
            if active is not None and fired is not None:
                out.append((active, fired, t))
            active = fired = None
    if active is not None and fired is not None:
        out.append((active, fired, None))
    return out


def evaluation_times(start: float, end: float, step_s: float) -> list[float]:
    """The grid a range query from ``start`` to ``end`` every ``step_s`` returns its points on."""
    return [start + k * step_s for k in range(int(math.floor((end - start) / step_s + 1e-9)) + 1)]


@dataclass(frozen=True)
class Timeline:
    firings: list[Firing] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # condition key -> why it was not evaluated


def timeline(conditions: Sequence[AlertCondition], results: Mapping[str, Mapping[str, Any]], start: float,
             end: float) -> Timeline:
    """The firings of every condition over ``[start, end]``, in the order they fired. ``results``
    maps a condition's key to its range result as journal data (chaos.slo.timeseries.entry); each
    series is one alert instance, labelled with its own labels and then the rule's."""
    firings: list[Firing] = []
    errors: dict[str, str] = {}
    for c in conditions:
        result = results.get(c.key)
        if result is None or result.get("error"):
            errors[c.key] = str((result or {}).get("error") or "not queried")
            continue
        times = evaluation_times(start, end, c.step_s)
        for s in result.get("series") or []:
            # By the nearest evaluation, not equal floats: Prometheus keeps times in milliseconds.
            have = {round((float(t) - start) / c.step_s) for t, v in s.get("points") or [] if v is not None}
            labels = {**(s.get("labels") or {}), **c.labels}
            labels.pop("__name__", None)
            firings += [Firing(c.alert, labels, p, f, r)
                        for p, f, r in firing_intervals(times, [k in have for k in range(len(times))], c.for_s)]
    return Timeline(sorted(firings, key=lambda f: (f.fired_at, f.alert, sorted(f.labels.items()))), errors)
