"""Time series of a run for the report's plots: the PromQL behind each plot, reading a set of
queries over the run from Prometheus (``collect``), and the client's records binned per second
(``bin_records``).

``collect`` is the only I/O; it returns journal data (plain lists and dicts), so a report drawn
later from the journal sees exactly what the run saw. A query that fails leaves an entry with its
``error`` instead of points: a missing plot must say why, never fail the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.slo.crosscheck import NOT_SENT, ClientRecord, percentile_nearest_rank
from chaos.slo.prometheus import PrometheusAPI, PrometheusError, PrometheusUnavailable, Series
from chaos.slo.queries import Backend, backend_named, errors_query, latency_query, replicas_query, requests_query

PLOT_WINDOW_S = 5.0  # rates and percentiles over the last 5 s: at least a few 1 s scrapes
PERCENTILES = (50, 90, 99)
MAX_POINTS = 10_000  # Prometheus refuses a range query of more than 11,000 points

Entry = dict[str, Any]  # {"query", "series": [{"labels", "points": [[t, v | None], ...]}], "error"}


def plot_queries(backend: str | Backend, window_s: float = PLOT_WINDOW_S, route: str | None = None) -> dict[str, str]:
    """Name -> PromQL: ``requests`` and ``errors`` per second, ``p50``/``p90``/``p99`` in ms, and
    ``replicas`` per deployment when the backend has a replica gauge."""
    b = backend_named(backend)
    per_s = f"{window_s:g}"
    queries = {"requests": f"{requests_query(b, window_s, route)} / {per_s}",
               "errors": f"{errors_query(b, window_s, route)} / {per_s}"}
    for p in PERCENTILES:
        queries[f"p{p}"] = latency_query(b, p, window_s, route if b.latency_has_route else None)
    if b.replicas is not None:
        queries["replicas"] = replicas_query(b)
    return queries


def range_step(start: float, end: float, step_s: float) -> float:
    """``step_s``, or coarser when the run is too long for one range query."""
    return max(step_s, (end - start) / MAX_POINTS)


def entry(query: str, series: Sequence[Series] = (), error: str | None = None) -> Entry:
    """A range result as journal data; a value that is not finite (NaN from 0/0, +Inf from the
    top bucket) becomes null: the plot shows a gap, not a spike."""
    return {"query": query, "error": error, "series": [
        {"labels": dict(s.labels), "points": [[round(t, 3), v if math.isfinite(v) else None] for t, v in s.points]}
        for s in series]}


class Collector:
    """Range queries over one window. Once Prometheus is unavailable the rest are not sent (each
    would wait for the same timeout); a rejected query spoils only its own entry."""

    def __init__(self, prom: PrometheusAPI, start: float, end: float) -> None:
        self.prom, self.start, self.end = prom, start, end
        self.down: str | None = None  # why Prometheus is taken to be down

    def collect(self, queries: Mapping[str, str], step_s: float) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        step = range_step(self.start, self.end, step_s)
        for name, q in queries.items():
            if self.down is not None:
                out[name] = entry(q, error=f"not queried: {self.down}")
                continue
            try:
                out[name] = entry(q, self.prom.query_range(q, self.start, self.end, step))
            except PrometheusUnavailable as e:
                self.down = f"{type(e).__name__}: {e}"
                out[name] = entry(q, error=self.down)
            except (PrometheusError, ValueError) as e:
                out[name] = entry(q, error=f"{type(e).__name__}: {e}")
        return out


def collect(prom: PrometheusAPI, queries: Mapping[str, str], start: float, end: float, step_s: float) -> dict[str, Entry]:
    """Every query as a range query over ``[start, end]`` every ``step_s`` (see ``Collector``)."""
    return Collector(prom, start, end).collect(queries, step_s)


def entry_series(e: Mapping[str, Any] | None) -> list[Series]:
    """Journal data back to ``Series`` (null values stay None in the points)."""
    return [Series(dict(s.get("labels") or {}), tuple((float(t), v) for t, v in s.get("points") or []))
            for s in (e or {}).get("series") or []]


# -- the client's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientBins:
    """Sent requests per bin of ``width_s`` by intended start, from the load start. ``t`` is each
    bin's middle, in seconds from the load start; latency is from the intended start."""

    width_s: float
    t: list[float] = field(default_factory=list)
    sent_per_s: list[float] = field(default_factory=list)
    errors_per_s: list[float] = field(default_factory=list)  # sent and not answered 2xx
    latency_ms: dict[int, list[float | None]] = field(default_factory=dict)  # percentile -> per bin


def bin_records(records: Iterable[ClientRecord], t0: float, end: float, width_s: float = 1.0,
                percentiles: Sequence[int] = PERCENTILES) -> ClientBins:
    """Records with an intended start in ``[t0, end)`` per bin. Records never sent (missed,
    cancelled) are left out, as everywhere else in the report. Pure."""
    if not width_s > 0:
        raise ValueError(f"width_s must be positive, got {width_s}")
    n = max(0, math.ceil((end - t0) / width_s - 1e-9))
    sent, errors = [0] * n, [0] * n
    latencies: list[list[float]] = [[] for _ in range(n)]
    for r in records:
        k = math.floor((r.intended - t0) / width_s)
        if not 0 <= k < n or (r.status is None and r.error in NOT_SENT):
            continue
        sent[k] += 1
        errors[k] += not r.good
        if r.latency_s is not None:
            latencies[k].append(r.latency_s * 1000)
    return ClientBins(
        width_s, [(k + 0.5) * width_s for k in range(n)], [c / width_s for c in sent], [c / width_s for c in errors],
        {p: [percentile_nearest_rank(ls, p) for ls in latencies] for p in percentiles})
