"""How far Prometheus' figures disagree with the client's own record of every request.

The load generator writes one JSON object per request (JSONL). From those records we compute
availability and p99 over the same window as Prometheus and compare: availability within
0.1 percentage points, p99 within one histogram bucket. Server-side metrics cannot count what
never reached a server (refused connections to a dead proxy, timeouts before an answer), so the
result names client failures by cause and how many requests the server never counted.

``client_figures`` and ``compare`` are pure; ``read_records`` and ``server_figures`` do the I/O.
"""

from __future__ import annotations

import json
import math
import os
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.slo.evaluate import single_value
from chaos.slo.prometheus import PrometheusAPI
from chaos.slo.queries import Backend, availability_query, backend_named, latency_query, requests_query


@dataclass(frozen=True)
class RecordFields:
    """The JSONL field names, in one place so a change in the load generator is one edit here."""

    intended: str = "intended"  # unix seconds the request was meant to start (open loop)
    route: str = "route"
    status: str = "status"  # HTTP status (int), or null when no answer came
    error: str = "error"  # error kind ("refused", "timeout", ...) or null
    latency_s: str = "latency_s"  # from the intended start to the answer


FIELDS = RecordFields()


@dataclass(frozen=True)
class ClientRecord:
    intended: float
    route: str | None
    status: int | None
    error: str | None
    latency_s: float | None

    @property
    def good(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def cause(self) -> str:
        """Why it failed: the status code ("503"), else the error kind ("refused"), else "no_answer"."""
        if self.status is not None:
            return str(self.status)
        return self.error or "no_answer"


def parse_record(obj: Mapping[str, Any], fields: RecordFields = FIELDS, where: str = "record") -> ClientRecord:
    """One record from its JSON object; a missing or malformed field names the field and the fix."""
    try:
        intended = float(obj[fields.intended])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: needs a numeric {fields.intended!r} (unix seconds); got {dict(obj)!r}. "
                         "If the load generator renamed it, change chaos.slo.crosscheck.RecordFields") from None
    status = obj.get(fields.status)
    if status is not None:
        try:
            status = int(status)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {fields.status!r} must be an HTTP status or null, got {status!r}") from None
    latency = obj.get(fields.latency_s)
    return ClientRecord(
        intended=intended,
        route=obj.get(fields.route),
        status=status,
        error=obj.get(fields.error),
        latency_s=None if latency is None else float(latency),
    )


def read_records(path: str | os.PathLike[str], fields: RecordFields = FIELDS) -> list[ClientRecord]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not JSON ({e})") from None
                out.append(parse_record(obj, fields, where=f"{path}:{n}"))
    return out


# Error kinds of records that were never judged: not sent (the load generator's in-flight cap)
# or cut short by the end of the run. They say nothing about the server; they are counted apart.
NOT_SENT = frozenset({"missed", "cancelled"})


@dataclass(frozen=True)
class ClientFigures:
    """The client's truth over ``[start, end)`` by intended start time."""

    total: int  # sent requests (not the NOT_SENT ones)
    good: int
    availability: float | None
    answered: int  # got an HTTP status, of any kind
    p99_ms: float | None  # nearest-rank p99 over answered requests (what a server histogram can see), or all sent
    failures: Mapping[str, int] = field(default_factory=dict)  # cause -> count ("503", "refused", ...)
    not_sent: Mapping[str, int] = field(default_factory=dict)  # "missed", "cancelled" -> count
    unanswered: int = field(init=False)  # no HTTP status at all: invisible to server-side metrics

    def __post_init__(self) -> None:
        object.__setattr__(self, "unanswered", self.total - self.answered)


def percentile_nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The smallest value with at least ``percentile`` % of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    # round first: 99.9 / 100 * 1000 is 999.0000000000001, and its ceiling would skip a rank
    rank = max(1, math.ceil(round(percentile / 100 * len(ordered), 9)))
    return ordered[rank - 1]


def client_figures(records: Iterable[ClientRecord], start: float, end: float, route: str | None = None,
                   answered_only: bool = True) -> ClientFigures:
    """``answered_only``: p99 over answered requests, as a server's histogram sees them; False to
    time every sent request, as the load generator's own histogram does."""
    in_window = [r for r in records if start <= r.intended < end and (route is None or r.route == route)]
    rs = [r for r in in_window if r.status is not None or r.error not in NOT_SENT]
    good = sum(r.good for r in rs)
    answered = [r for r in rs if r.status is not None]
    lat = [r.latency_s * 1000 for r in (answered if answered_only else rs) if r.latency_s is not None]
    failures = Counter(r.cause for r in rs if not r.good)
    not_sent = Counter(r.cause for r in in_window if r.status is None and r.error in NOT_SENT)
    return ClientFigures(
        total=len(rs), good=good, availability=good / len(rs) if rs else None, answered=len(answered),
        p99_ms=percentile_nearest_rank(lat, 99), failures=dict(sorted(failures.items())),
        not_sent=dict(sorted(not_sent.items())),
    )


@dataclass(frozen=True)
class ServerFigures:
    """Prometheus' view of the same window, with the queries that produced it."""

    total: float | None
    availability: float | None
    p99_ms: float | None
    queries: Mapping[str, str] = field(default_factory=dict)


def server_figures(prom: PrometheusAPI, backend: str | Backend, start: float, end: float,
                   route: str | None = None) -> ServerFigures:
    b = backend_named(backend)
    w = end - start
    lat_route = route if b.latency_has_route else None  # a histogram without a route label: all routes
    qs = {
        "total": requests_query(b, w, route),
        "availability": availability_query(b, w, route),
        "p99_ms": latency_query(b, 99, w, lat_route),
    }
    v = {k: single_value(prom.query(q, at=end)) for k, q in qs.items()}
    return ServerFigures(total=v["total"], availability=v["availability"], p99_ms=v["p99_ms"], queries=qs)


Bucket = tuple[float, float]  # (lower, upper] in milliseconds


def bucket_of(value_ms: float, bounds_ms: Sequence[float]) -> tuple[int, Bucket]:
    """Index and ``(lower, upper]`` bounds of the histogram bucket holding ``value_ms``."""
    i = bisect_left(bounds_ms, value_ms)
    lo = bounds_ms[i - 1] if i > 0 else 0.0
    hi = bounds_ms[i] if i < len(bounds_ms) else math.inf
    return i, (lo, hi)


@dataclass(frozen=True)
class CrossCheck:
    client: ClientFigures
    server: ServerFigures
    availability_diff_pp: float | None  # (client - server) * 100; negative: the server looks better
    availability_ok: bool | None
    p99_client_bucket_ms: Bucket | None
    p99_server_bucket_ms: Bucket | None
    p99_bucket_distance: int | None  # how many buckets apart; 0 is the same bucket
    p99_relative_diff: float | None  # (client - server) / server
    p99_ok: bool | None
    unseen_by_server: float | None  # requests the client sent that the server never counted
    summary: str
    # Both within tolerance; None when either figure is missing on one side. A field, so asdict keeps it.
    ok: bool | None = field(init=False)

    def __post_init__(self) -> None:
        both = None if self.availability_ok is None or self.p99_ok is None else self.availability_ok and self.p99_ok
        object.__setattr__(self, "ok", both)


def compare(client: ClientFigures, server: ServerFigures, bucket_bounds_ms: Sequence[float],
            availability_tolerance_pp: float = 0.1, p99_bucket_tolerance: int = 1) -> CrossCheck:
    lines = []
    diff_pp = avail_ok = None
    if client.availability is not None and server.availability is not None:
        diff_pp = (client.availability - server.availability) * 100
        avail_ok = abs(diff_pp) <= availability_tolerance_pp
        lines.append(f"availability: client {client.availability:.5f}, Prometheus {server.availability:.5f}, "
                     f"{diff_pp:+.3f} pp ({'within' if avail_ok else 'outside'} {availability_tolerance_pp} pp)")
    else:
        lines.append(f"availability: client {client.availability}, Prometheus {server.availability} (no data on one side)")

    cb = sb = None
    dist = None
    rel = None
    p99_ok = None
    if client.p99_ms is not None and server.p99_ms is not None:
        ci, cb = bucket_of(client.p99_ms, bucket_bounds_ms)
        si, sb = bucket_of(server.p99_ms, bucket_bounds_ms)
        dist = abs(ci - si)
        rel = (client.p99_ms - server.p99_ms) / server.p99_ms if server.p99_ms else None
        p99_ok = dist <= p99_bucket_tolerance
        shown = f", {rel:+.1%}" if rel is not None else ""
        lines.append(f"p99: client {client.p99_ms:.3f} ms in ({cb[0]:g}, {cb[1]:g}], Prometheus {server.p99_ms:.3f} ms "
                     f"in ({sb[0]:g}, {sb[1]:g}]: {dist} bucket(s) apart{shown} "
                     f"({'within' if p99_ok else 'outside'} {p99_bucket_tolerance})")
    else:
        lines.append(f"p99: client {client.p99_ms} ms, Prometheus {server.p99_ms} ms (no data on one side)")

    unseen = None if server.total is None else client.total - server.total
    lines.append(f"requests: client sent {client.total}, Prometheus counted "
                 f"{'none' if server.total is None else f'{server.total:.0f}'}"
                 + ("" if unseen is None else f" ({unseen:+.0f} unseen by the server)"))
    if client.failures:
        lines.append("client failures by cause: " + ", ".join(f"{k}={v}" for k, v in sorted(client.failures.items())))
    if client.unanswered:
        lines.append(f"{client.unanswered} request(s) got no answer at all; server-side metrics cannot count them")
    if client.not_sent:
        lines.append("left out, never judged: " + ", ".join(f"{k}={v}" for k, v in client.not_sent.items()))
    return CrossCheck(client, server, diff_pp, avail_ok, cb, sb, dist, rel, p99_ok, unseen, "\n".join(lines))


def cross_check(prom: PrometheusAPI, backend: str | Backend, records: Iterable[ClientRecord] | str | os.PathLike[str],
                start: float, end: float, route: str | None = None, availability_tolerance_pp: float = 0.1,
                p99_bucket_tolerance: int = 1) -> CrossCheck:
    """Client records (or the path of their JSONL file) against ``backend``'s Prometheus figures
    over the same ``[start, end]``.

    Client records are taken by intended start in ``[start, end)``; Prometheus counts requests
    when they finish, in ``(start, end]``; requests in flight at either edge may move a few counts.
    """
    b = backend_named(backend)
    if isinstance(records, str | os.PathLike):
        records = read_records(records)
    return compare(client_figures(records, start, end, route, answered_only=not b.latency_counts_failures), server_figures(prom, b, start, end, route),
                   b.bucket_bounds_ms, availability_tolerance_pp, p99_bucket_tolerance)
