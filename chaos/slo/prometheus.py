"""A small client for the Prometheus HTTP API: instant queries, range queries, readiness.

Only I/O and decoding live here; what the numbers mean is decided in ``chaos.slo.evaluate``.
Every failure becomes a ``PrometheusError`` that names the URL, the query and the fix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

DEFAULT_URL = "http://127.0.0.1:9090"


class PrometheusError(Exception):
    """Prometheus could not answer a query. ``url``, ``query`` and ``fix`` are kept as fields."""

    def __init__(self, what: str, *, url: str, query: str | None, fix: str) -> None:
        self.what = what
        self.url = url
        self.query = query
        self.fix = fix
        shown = f" for query {query!r}" if query is not None else ""
        super().__init__(f"Prometheus at {url}: {what}{shown}. Fix: {fix}")


class PrometheusUnavailable(PrometheusError):
    """Prometheus is down, unreachable, too slow, or answered with a server error."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered but rejected the query (bad PromQL, bad parameters)."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant-query result (a scalar comes back as one unlabelled sample)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range-query result: ``(unix seconds, value)`` points in time order."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...] = field(default=())


class PrometheusAPI(Protocol):
    """What the SLO code needs from Prometheus (the real client, or a fake in unit tests)."""

    url: str

    def query(self, q: str, at: float | None = None) -> list[Sample]: ...

    def query_range(self, q: str, start: float, end: float, step: float) -> list[Series]: ...


def _number(text: str) -> float:
    # Prometheus encodes sample values as strings: "1.5", "NaN", "+Inf", "-Inf".
    return float(text)


def decode(data: Mapping[str, Any]) -> list[Sample] | list[Series]:
    """Decode the ``data`` member of a successful API answer (pure; used by the client)."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" or kind == "string":
        assert isinstance(result, list)
        return [Sample(labels={}, value=_number(result[1]) if kind == "scalar" else math.nan)]
    if kind == "vector":
        assert isinstance(result, list)
        return [Sample(labels=dict(r.get("metric", {})), value=_number(r["value"][1])) for r in result]
    if kind == "matrix":
        assert isinstance(result, list)
        return [
            Series(labels=dict(r.get("metric", {})), points=tuple((float(t), _number(v)) for t, v in r["values"]))
            for r in result
        ]
    raise ValueError(f"unknown resultType {kind!r}")


class Prometheus:
    """The Prometheus HTTP API at ``url``. Every call is bounded by ``timeout_s``."""

    def __init__(self, url: str = DEFAULT_URL, timeout_s: float = 10.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"Prometheus({self.url!r})"

    def ready(self) -> bool:
        """True when Prometheus answers ``/-/ready`` with 200 (it answers 503 while loading its TSDB)."""
        try:
            r = requests.get(f"{self.url}/-/ready", timeout=self.timeout_s)
        except requests.RequestException:
            return False
        return r.status_code == 200

    def wait_ready(self, timeout_s: float, poll_s: float = 0.1,
                   sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        """Poll ``ready()`` until it holds; raise ``PrometheusUnavailable`` after ``timeout_s``."""
        deadline = clock() + timeout_s
        while not self.ready():
            if clock() >= deadline:
                raise PrometheusUnavailable(
                    f"not ready after {timeout_s} s (/-/ready did not answer 200)", url=self.url, query=None,
                    fix="check that Prometheus started (its log names the error) and listens on this address",
                )
            sleep(poll_s)

    def query(self, q: str, at: float | None = None) -> list[Sample]:
        """Instant query evaluated at unix time ``at`` (default: now)."""
        params: dict[str, str] = {"query": q}
        if at is not None:
            params["time"] = repr(float(at))
        out = self._call("/api/v1/query", q, params)
        assert all(isinstance(s, Sample) for s in out)
        return out  # type: ignore[return-value]

    def query_range(self, q: str, start: float, end: float, step: float) -> list[Series]:
        """Range query from ``start`` to ``end`` (unix seconds, inclusive) every ``step`` seconds."""
        if step <= 0 or end < start:
            raise ValueError(f"need step > 0 and end >= start, got start={start} end={end} step={step}")
        params = {"query": q, "start": repr(float(start)), "end": repr(float(end)), "step": repr(float(step))}
        out = self._call("/api/v1/query_range", q, params)
        assert all(isinstance(s, Series) for s in out)
        return out  # type: ignore[return-value]

    def _call(self, path: str, q: str, params: dict[str, str]) -> list[Sample] | list[Series]:
        # Prometheus also stops evaluating at this timeout, so a heavy query does not linger there.
        params = {**params, "timeout": f"{round(self.timeout_s * 1000)}ms"}  # Prometheus durations take no fractions
        try:
            # POST: long queries do not hit URL length limits.
            r = requests.post(f"{self.url}{path}", data=params, timeout=self.timeout_s)
        except requests.Timeout as e:
            raise PrometheusUnavailable(
                f"no answer within {self.timeout_s} s ({type(e).__name__})", url=self.url, query=q,
                fix="check that Prometheus is not overloaded, narrow the query, or raise timeout_s",
            ) from e
        except requests.RequestException as e:
            raise PrometheusUnavailable(
                f"not reachable ({type(e).__name__}: {e})", url=self.url, query=q,
                fix="start Prometheus (e.g. `serve-core cluster up`, or `prometheus --web.listen-address=...`) "
                    "or point the testbed at the right URL",
            ) from e
        body = _json_or_none(r)
        if r.status_code == 200 and body is not None and body.get("status") == "success":
            return decode(body["data"])
        detail = (f"{body.get('errorType')}: {body.get('error')}" if body is not None
                  else f"HTTP {r.status_code}: {r.text[:200]!r}")
        if r.status_code in (400, 422):
            raise PrometheusQueryError(
                f"rejected the query ({detail})", url=self.url, query=q,
                fix=f"correct the PromQL; try it at {self.url}/graph",
            )
        raise PrometheusUnavailable(
            f"answered HTTP {r.status_code} ({detail})", url=self.url, query=q,
            fix="check the Prometheus log; a 503 usually means it is still starting or overloaded",
        )


def _json_or_none(r: requests.Response) -> dict[str, Any] | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
