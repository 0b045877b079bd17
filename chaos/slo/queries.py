"""PromQL for each SLO kind, per backend: pure string builders, no I/O.

The same experiment must judge serve_core and Ray Serve, so each backend is described by
its metric names, labels and latency unit, and every query is built from that description.

All window queries use ``increase(...[W])`` evaluated at the window's end, so one instant
query covers exactly ``(end - W, end]``. Ratios use the same window for numerator and
denominator, so Prometheus' extrapolation cancels out. A numerator that matches no series
(no error was ever counted) is ``or vector(0)``, so "no errors" is 0, not "no data"; a
denominator with no series or no increase gives no result or NaN, which means "no data".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from chaos.slo.spec import SLO, Latency, PromQL, Recovery


class SLOError(ValueError):
    """An SLO declaration that cannot be evaluated as written (the message names the fix)."""


@dataclass(frozen=True)
class Backend:
    """Where a backend's request counter and latency histogram live, and what they are called."""

    name: str
    requests: str  # counter of answered requests, with a status label
    status_label: str  # its label holding the HTTP status code as a string ("200", "503")
    latency_buckets: str  # the histogram's ``_bucket`` series
    latency_to_ms: float  # multiply a histogram value by this to get milliseconds
    bucket_bounds_ms: tuple[float, ...]  # finite upper bounds, milliseconds, ascending
    latency_has_route: bool = True
    latency_counts_failures: bool = False  # the histogram also times requests that got no answer
    # Applied when an SLO names no route. Ray Serve counts its own health and route checks
    # ("/-/healthz", "/-/routes") as requests; serve_core does not: leave them out to compare like with like.
    all_routes_matcher: str | None = None
    # Gauge of replicas per deployment (labels application, deployment), summed over its series
    # that match ``replicas_matcher``; None for a backend that has no replicas (the load generator).
    replicas: str | None = None
    replicas_matcher: str | None = None


SERVE_CORE_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 60.0,
)
# ray.serve._private.constants.DEFAULT_LATENCY_BUCKET_MS (ray 2.60); RAY_SERVE_REQUEST_LATENCY_BUCKETS_MS overrides it.
RAY_SERVE_BUCKETS_MS = (
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 1000.0, 2000.0, 5000.0,
    10000.0, 60000.0, 120000.0, 300000.0, 600000.0,
)

BACKENDS: dict[str, Backend] = {
    "serve_core": Backend(
        name="serve_core",
        requests="serve_core_http_requests_total",
        status_label="status",
        latency_buckets="serve_core_http_request_latency_seconds_bucket",
        latency_to_ms=1000.0,
        bucket_bounds_ms=tuple(b * 1000.0 for b in SERVE_CORE_BUCKETS_S),
        # serve_core/metrics.py: the controller's view, one series per state (STARTING, RUNNING, STOPPING).
        replicas="serve_core_deployment_replicas",
        replicas_matcher='state="RUNNING"',
    ),
    # Names as exported by ray 2.60 (OpenTelemetry exporter, "ray_" namespace, "_total" on counters):
    # ray/serve/_private/request_ingress_metrics.py.
    "ray_serve": Backend(
        name="ray_serve",
        requests="ray_serve_num_http_requests_total",
        status_label="status_code",
        latency_buckets="ray_serve_http_request_latency_ms_bucket",
        latency_to_ms=1.0,
        bucket_bounds_ms=RAY_SERVE_BUCKETS_MS,
        all_routes_matcher='route!~"/-/.*"',
        # ray/serve/_private/deployment_state.py: the healthy count per deployment, or 1/0 per replica
        # when high-cardinality tags are on; the sum is the healthy count either way.
        replicas="ray_serve_deployment_replica_healthy",
    ),
    # The load generator's own view (loadgen/metrics.py), scraped like the others. Its status is a
    # code or an error kind ("timeout", "refused"), so refused connections count as errors here,
    # and only here; its latency histogram times failures too.
    "loadgen": Backend(
        name="loadgen",
        requests="loadgen_requests_total",
        status_label="status",
        latency_buckets="loadgen_request_latency_seconds_bucket",
        latency_to_ms=1000.0,
        bucket_bounds_ms=tuple(b * 1000.0 for b in SERVE_CORE_BUCKETS_S),
        latency_counts_failures=True,
    ),
}


def backend_named(backend: str | Backend) -> Backend:
    if isinstance(backend, Backend):
        return backend
    try:
        return BACKENDS[backend]
    except KeyError:
        raise SLOError(f"unknown backend {backend!r}; use one of {sorted(BACKENDS)} or pass a Backend") from None


def duration(seconds: float) -> str:
    """A PromQL duration: whole seconds as ``"120s"``, anything finer in milliseconds."""
    if not seconds > 0 or math.isinf(seconds):
        raise SLOError(f"a window must be a positive number of seconds, got {seconds}")
    ms = round(seconds * 1000)
    if ms == 0:
        raise SLOError(f"a window of {seconds} s is under a millisecond; PromQL cannot express it")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(metric: str, matchers: Iterable[str]) -> str:
    ms = list(matchers)
    return f"{metric}{{{','.join(ms)}}}" if ms else metric


def _route_matchers(b: Backend, route: str | None) -> list[str]:
    if route is not None:
        return [f"route={quote(route)}"]
    return [b.all_routes_matcher] if b.all_routes_matcher else []


def _request_matchers(b: Backend, route: str | None, status: str | None) -> list[str]:
    return _route_matchers(b, route) + ([status] if status is not None else [])


def _good(b: Backend) -> str:
    return f'{b.status_label}=~"2.."'


def _bad(b: Backend) -> str:
    return f'{b.status_label}!~"2.."'


def requests_query(b: Backend, window_s: float, route: str | None = None) -> str:
    """Requests counted in the window (all statuses)."""
    return f"sum(increase({selector(b.requests, _request_matchers(b, route, None))}[{duration(window_s)}]))"


def _count(b: Backend, status: str, window_s: float, route: str | None) -> str:
    part = selector(b.requests, _request_matchers(b, route, status))
    return f"(sum(increase({part}[{duration(window_s)}])) or vector(0))"


def _ratio(b: Backend, status: str, window_s: float, route: str | None) -> str:
    return f"{_count(b, status, window_s, route)} / {requests_query(b, window_s, route)}"


def errors_query(b: Backend, window_s: float, route: str | None = None) -> str:
    """Requests counted in the window not answered with a 2xx status; 0, not no data, when none failed."""
    return _count(b, _bad(b), window_s, route)


def availability_query(b: Backend, window_s: float, route: str | None = None) -> str:
    """Share of requests in the window answered with a 2xx status."""
    return _ratio(b, _good(b), window_s, route)


def error_ratio_query(b: Backend, window_s: float, route: str | None = None) -> str:
    """Share of requests in the window not answered with a 2xx status (1 - availability)."""
    return _ratio(b, _bad(b), window_s, route)


def latency_query(b: Backend, percentile: float, window_s: float, route: str | None = None) -> str:
    """The latency percentile over the window in milliseconds, interpolated in the histogram."""
    if not 0 < percentile < 100:
        raise SLOError(f"percentile must be between 0 and 100 (exclusive), got {percentile}")
    if route is not None and not b.latency_has_route:
        raise SLOError(f"backend {b.name!r} has no route label on {b.latency_buckets}; drop the route from the latency SLO")
    ms = _route_matchers(b, route) if b.latency_has_route else []
    q = f"histogram_quantile({percentile / 100:.10g}, sum by (le) (increase({selector(b.latency_buckets, ms)}[{duration(window_s)}])))"
    return q if b.latency_to_ms == 1 else f"{q} * {b.latency_to_ms:g}"


def replicas_query(b: Backend) -> str:
    """Replicas per deployment (one series per application and deployment) as the backend counts them."""
    if b.replicas is None:
        raise SLOError(f"backend {b.name!r} exports no replica gauge; replicas can be read only on a server backend")
    return f"sum by (application, deployment) ({selector(b.replicas, [b.replicas_matcher] if b.replicas_matcher else [])})"


def promql_query(slo: PromQL, window_s: float) -> str:
    # str.replace, not str.format: PromQL is full of braces.
    return slo.query.replace("{window}", duration(window_s))


# --- declarations -------------------------------------------------------------------------

_SLO_LIST: TypeAdapter[list[SLO]] = TypeAdapter(list[SLO])


def parse_slos(data: Any) -> list[SLO]:
    """SLOs from plain data (a YAML list); every problem named with its place in the list."""
    try:
        return _SLO_LIST.validate_python(data)
    except ValidationError as e:
        problems = "; ".join(f"slos[{']['.join(str(p) for p in err['loc'])}]: {err['msg']}" for err in e.errors())
        raise SLOError(f"invalid SLO declaration: {problems}. Kinds: availability, latency, recovery, promql") from None


def check_slos(slos: Sequence[SLO], backend: str | Backend) -> None:
    """Raise ``SLOError`` for declarations this backend cannot evaluate, before a run starts."""
    b = backend_named(backend)
    seen: set[str] = set()
    for s in slos:
        if s.name in seen:
            raise SLOError(f"two SLOs are named {s.name!r}; give each a distinct name (the journal keys results by name)")
        seen.add(s.name)
        if isinstance(s, Latency) and s.route is not None and not b.latency_has_route:
            raise SLOError(
                f"SLO {s.name!r}: backend {b.name!r} has no route label on its latency histogram "
                f"({b.latency_buckets}); drop route={s.route!r} or judge latency on another backend"
            )
        if isinstance(s, PromQL):
            if not s.query.strip():
                raise SLOError(f"SLO {s.name!r}: the PromQL query is empty")
            if "{ window }" in s.query or "{{window}}" in s.query:
                raise SLOError(f"SLO {s.name!r}: write the window placeholder as {{window}} exactly, got {s.query!r}")
        if isinstance(s, Recovery) and s.window_s < 1:
            raise SLOError(
                f"SLO {s.name!r}: window_s={s.window_s} is shorter than the 1 s step recovery is measured in; use >= 1"
            )
