"""Run every panel's queries against a real Prometheus, as Grafana would, and report what is empty.

``python -m dashboards.check --prometheus http://10.77.0.1:9391`` checks the built dashboards
against a running cluster: each target of each panel, with Grafana's variables substituted
(``$__rate_interval`` and friends by fixed windows, ``$application`` and ``$deployment`` by
``.*``, their "All"), must parse and return at least one series with a finite value, and the
metric the panel is about must have series of its own (so ``or vector(0)`` cannot pass for
data). Variables (``label_values``) must have values. Annotations are run as range queries over the last ``--range`` seconds; ``--require``
names those that must mark something (for example the fault a test injected).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.definitions import all_dashboards
from dashboards.grafana_model import Dashboard, substitute

_LABEL_VALUES = re.compile(r"label_values\((.+),\s*(\w+)\s*\)")
DEFAULT_VALUES = {"__rate_interval": "30s", "__interval": "5s", "application": ".*", "deployment": ".*"}


class PrometheusError(Exception):
    """Prometheus refused a query (status error: usually a parse error) or did not answer."""


@dataclass(frozen=True)
class Problem:
    dashboard: str
    item: str  # panel title or "annotation NAME"
    expr: str
    error: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.item}: {self.error}\n    {self.expr}"


def _get(url: str, path: str, params: Mapping[str, str], timeout_s: float) -> Any:
    q = urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}{path}?{q}", timeout=timeout_s) as r:
            doc = json.load(r)
    except urllib.error.HTTPError as e:  # 400 with a JSON body on a parse error
        try:
            doc = json.load(e)
        except ValueError:
            raise PrometheusError(f"HTTP {e.code} from {path}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise PrometheusError(f"no answer from {url}{path}: {e}") from None
    if doc.get("status") != "success":
        raise PrometheusError(f"{doc.get('errorType', 'error')}: {doc.get('error', doc)}")
    return doc["data"]


def instant(url: str, expr: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    data = _get(url, "/api/v1/query", {"query": expr}, timeout_s)
    if data.get("resultType") != "vector":
        raise PrometheusError(f"expected an instant vector, got a {data.get('resultType')}")
    return list(data["result"])


def range_query(url: str, expr: str, start: float, end: float, step_s: float, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    data = _get(url, "/api/v1/query_range",
                {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"}, timeout_s)
    return list(data["result"])


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def has_value(result: Iterable[dict[str, Any]]) -> bool:
    """At least one series with a finite value (instant ``value`` or any of a range's ``values``)."""
    for series in result:
        values = series.get("values") or ([series["value"]] if "value" in series else [])
        if any(_finite(v[1]) for v in values):
            return True
    return False


def parse_label_values(query: str) -> tuple[str, str]:
    """``label_values(SELECTOR, LABEL)`` -> (SELECTOR, LABEL)."""
    m = _LABEL_VALUES.fullmatch(query.strip())
    if not m:
        raise ValueError(f"not a label_values(selector, label) query: {query!r}")
    return m.group(1).strip(), m.group(2)


def check_dashboard(url: str, d: Dashboard, values: Mapping[str, str], range_s: float,
                    require_annotations: Sequence[str] = (), now: float | None = None) -> list[Problem]:
    now = time.time() if now is None else now
    values = {**values, "__range": values.get("__range", f"{max(1, int(range_s))}s")}
    problems: list[Problem] = []
    present: dict[str, bool] = {}

    def metric_present(metric: str) -> bool:
        if metric not in present:
            try:
                present[metric] = has_value(instant(url, f'count(last_over_time({{__name__="{metric}"}}[{int(range_s)}s]))'))
            except PrometheusError:
                present[metric] = False
        return present[metric]

    for p in d.panels():
        for q in p.queries:
            expr = substitute(q.expr, values)
            metric = q.metric or p.metric
            try:
                result = instant(url, expr)
            except PrometheusError as e:
                problems.append(Problem(d.uid, p.title, expr, str(e)))
                continue
            if not has_value(result):
                problems.append(Problem(d.uid, p.title, expr, f"no series with a value ({len(result)} series)"))
            elif not metric_present(metric):
                problems.append(Problem(d.uid, p.title, expr, f"the query answers, but {metric} has no series"))
    for v in d.variables:
        selector, label = parse_label_values(v.query)
        match = substitute(selector, values)
        try:
            found = _get(url, f"/api/v1/label/{label}/values",
                         {"match[]": match, "start": f"{now - range_s:.3f}", "end": f"{now:.3f}"}, 10.0)
        except PrometheusError as e:
            problems.append(Problem(d.uid, f"variable {v.name}", v.query, str(e)))
            continue
        if not found:
            problems.append(Problem(d.uid, f"variable {v.name}", v.query, f"no values of {label} on {match}"))
    for a in d.annotations:
        expr = substitute(a.expr, values)
        try:
            result = range_query(url, expr, now - range_s, now, 1)
        except PrometheusError as e:
            problems.append(Problem(d.uid, f"annotation {a.name}", expr, str(e)))
            continue
        if a.name in require_annotations and not has_value(result):
            problems.append(Problem(d.uid, f"annotation {a.name}", expr, f"marked nothing in the last {range_s:.0f}s"))
    return problems


def check(url: str, dashboards: Sequence[Dashboard] | None = None, values: Mapping[str, str] | None = None,
          range_s: float = 120.0, require_annotations: Sequence[str] = ()) -> list[Problem]:
    """Every problem of every dashboard (empty: every panel has data)."""
    values = {**DEFAULT_VALUES, **(values or {})}
    out: list[Problem] = []
    for d in dashboards if dashboards is not None else all_dashboards():
        out += check_dashboard(url, d, values, range_s, require_annotations)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboards.check", description=__doc__.split("\n\n")[0])
    p.add_argument("--prometheus", required=True, help="base URL, e.g. http://10.77.0.1:9391")
    p.add_argument("--range", dest="range_s", type=float, default=120.0,
                   help="seconds of history for $__range and annotations (default 120)")
    p.add_argument("--rate-interval", default=DEFAULT_VALUES["__rate_interval"], help="value of $__rate_interval")
    p.add_argument("--require", action="append", default=[], metavar="ANNOTATION",
                   help="an annotation that must mark something (repeatable)")
    ns = p.parse_args(argv)
    problems = check(ns.prometheus, values={"__rate_interval": ns.rate_interval}, range_s=ns.range_s,
                     require_annotations=ns.require)
    total = sum(len(d.panels()) for d in all_dashboards())
    for problem in problems:
        print(problem)
    print(f"{total} panels in {len(all_dashboards())} dashboards: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
