"""Judge SLOs from Prometheus over a run's window: ``evaluate`` for the steady-state hypothesis,
``burn_rate`` for abort conditions during a run.

The queries come from ``chaos.slo.queries``; the verdicts are pure functions of the numbers
Prometheus returns (``judge_*``, ``recovery_times``), so they are unit-tested without a server.
"No data" is its own verdict: an SLO with no traffic behind it is neither met nor violated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from chaos.slo.prometheus import PrometheusAPI, PrometheusQueryError, Sample, Series
from chaos.slo.queries import (
    Backend,
    SLOError,
    availability_query,
    backend_named,
    check_slos,
    duration,
    error_ratio_query,
    latency_query,
    promql_query,
)
from chaos.slo.spec import SLO, Availability, Latency, PromQL, Recovery

__all__ = [
    "FaultRecovery", "SLOError", "SLOResult", "Verdict", "burn_rate", "burn_rate_from_ratio", "evaluate",
    "judge_availability", "judge_latency", "judge_promql", "judge_recovery", "recovery_times", "single_value",
]


class Verdict(StrEnum):
    MET = "met"
    VIOLATED = "violated"
    NO_DATA = "no_data"  # no traffic (or no series) behind the SLO in the window
    ERROR = "error"  # Prometheus rejected the query, or it did not return one number


@dataclass(frozen=True)
class SLOResult:
    """One SLO judged over one window. ``ok`` is None unless the verdict is met or violated."""

    name: str
    kind: str
    verdict: Verdict
    value: float | None  # ratio for availability, ms for latency, seconds for recovery
    threshold: float  # the objective, threshold_ms, max_s, or the PromQL threshold
    op: str  # how value must compare with threshold to be met
    unit: str
    query: str
    detail: str
    # A field, not a property, so dataclasses.asdict (the journal) carries it.
    ok: bool | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ok", {Verdict.MET: True, Verdict.VIOLATED: False}.get(self.verdict))


@dataclass(frozen=True)
class FaultRecovery:
    """For one fault: when the error ratio first went bad, when it was healthy again."""

    fault_at: float
    impact_at: float | None  # None: never unhealthy before the next fault (no visible impact)
    recovered_at: float | None  # None: not healthy again by the end of the window
    recovery_s: float | None  # recovered_at - fault_at; 0 when there was no visible impact


_MAX_POINTS = 10_000

_OPS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b,
}


# --- pure verdicts ------------------------------------------------------------------------

def single_value(samples: Sequence[Sample]) -> float | None:
    """The one number of a query result; None for an empty result or NaN (e.g. 0/0: no traffic).

    Raises ``ValueError`` when the result has several series: the query must aggregate.
    """
    if not samples:
        return None
    if len(samples) > 1:
        shown = ", ".join(str(dict(s.labels)) for s in samples[:3])
        raise ValueError(f"the query returned {len(samples)} series ({shown}...); aggregate it to one number, e.g. sum(...)")
    v = samples[0].value
    return None if math.isnan(v) else v


def judge_availability(slo: Availability, value: float | None, query: str, window: str) -> SLOResult:
    if value is None:
        return SLOResult(slo.name, slo.kind, Verdict.NO_DATA, None, slo.objective, ">=", "ratio", query,
                         f"no requests counted{_on(slo.route)} in the last {window}")
    met = value >= slo.objective
    return SLOResult(slo.name, slo.kind, Verdict.MET if met else Verdict.VIOLATED, value, slo.objective, ">=", "ratio",
                     query, f"availability {value:.6f} {'>=' if met else '<'} objective {slo.objective}{_on(slo.route)} over {window}")


def judge_latency(slo: Latency, value_ms: float | None, query: str, window: str) -> SLOResult:
    if value_ms is None:
        return SLOResult(slo.name, slo.kind, Verdict.NO_DATA, None, slo.threshold_ms, "<=", "ms", query,
                         f"no latency observations{_on(slo.route)} in the last {window}")
    met = value_ms <= slo.threshold_ms
    return SLOResult(slo.name, slo.kind, Verdict.MET if met else Verdict.VIOLATED, value_ms, slo.threshold_ms, "<=", "ms",
                     query, f"p{slo.percentile:g} {value_ms:.3f} ms {'<=' if met else '>'} {slo.threshold_ms} ms{_on(slo.route)} over {window}")


def judge_promql(slo: PromQL, value: float | None, query: str, window: str) -> SLOResult:
    if value is None:
        return SLOResult(slo.name, slo.kind, Verdict.NO_DATA, None, slo.threshold, slo.op, "", query,
                         f"the query returned no number (empty or NaN) over {window}")
    met = bool(_OPS[slo.op](value, slo.threshold))
    return SLOResult(slo.name, slo.kind, Verdict.MET if met else Verdict.VIOLATED, value, slo.threshold, slo.op, "", query,
                     f"{value:g} {slo.op} {slo.threshold:g} is {met}")


def recovery_times(points: Sequence[tuple[float, float | None]], fault_times: Sequence[float],
                   healthy_error_ratio: float, stable_s: float = 0.0) -> list[FaultRecovery]:
    """Recovery per fault from an error-ratio series sampled on a regular grid.

    ``points`` are ``(time, error ratio or None)`` in time order; None (no request counted in the
    window) counts as unhealthy: a dead proxy counts nothing, and that is not health. For each
    fault, impact is the first unhealthy point at or after it and before the next fault; recovery
    is the first healthy point after the impact that stays healthy for ``stable_s`` (or until the
    next fault, or the end): a moment of health inside a longer outage is not a recovery. A fault
    with no unhealthy point recovers in 0 s.
    """
    faults = sorted(fault_times)
    out = []
    for i, f in enumerate(faults):
        nxt = faults[i + 1] if i + 1 < len(faults) else math.inf
        impact = next((t for t, v in points if f <= t < nxt and not _healthy(v, healthy_error_ratio)), None)
        if impact is None:
            out.append(FaultRecovery(f, None, f, 0.0))
            continue
        back = next((t for t, v in points if t > impact and _healthy(v, healthy_error_ratio)
                     and all(_healthy(w, healthy_error_ratio) for u, w in points if t < u <= min(t + stable_s, nxt))),
                    None)
        out.append(FaultRecovery(f, impact, back, None if back is None else back - f))
    return out


def judge_recovery(slo: Recovery, points: Sequence[tuple[float, float | None]], fault_times: Sequence[float],
                   query: str, fault_ends: Sequence[float | None] = ()) -> SLOResult:
    """``fault_ends[i]``: when fault ``i`` stopped acting (a held partition's heal; the fault's
    own time for a kill). A fault not seen to recover is judged "not recovered" only when the
    window held a whole error-ratio window (``slo.window_s``) after that end: before then, its
    ratio still covers the fault, and the run ending then says nothing about recovery (issue 16:
    a run whose every request was answered was failed for it)."""
    if not fault_times:
        return SLOResult(slo.name, slo.kind, Verdict.NO_DATA, None, slo.max_s, "<=", "s", query,
                         "no fault times given: nothing to recover from")
    if all(v is None for _, v in points):
        return SLOResult(slo.name, slo.kind, Verdict.NO_DATA, None, slo.max_s, "<=", "s", query,
                         f"no requests counted{_on(slo.route)} between the first fault and the end of the window")
    recs = recovery_times(points, fault_times, slo.healthy_error_ratio, stable_s=slo.window_s)
    end = points[-1][0] if points else max(fault_times)
    acted_until = dict(zip(fault_times, fault_ends, strict=True)) if fault_ends else {}
    unjudged = {r.fault_at for r in recs if r.recovery_s is None
                and end - (acted_until.get(r.fault_at) or r.fault_at) < slo.window_s}
    parts = []
    for r in recs:
        if r.fault_at in unjudged:
            until = acted_until.get(r.fault_at) or r.fault_at
            parts.append(f"fault at {_s(r.fault_at)}: recovery not judged: the window ended {_s(end - until)} s after the "
                         f"fault stopped acting, less than the error ratio's {duration(slo.window_s)} (lengthen after_s)")
        elif r.recovery_s is None:
            parts.append(f"fault at {_s(r.fault_at)}: not recovered by {_s(end)} (>= {_s(end - r.fault_at)} s)")
        elif r.impact_at is None:
            parts.append(f"fault at {_s(r.fault_at)}: no visible impact")
        else:
            parts.append(f"fault at {_s(r.fault_at)}: unhealthy from +{_s(r.impact_at - r.fault_at)} s, "
                         f"recovered in {_s(r.recovery_s)} s")
    detail = f"error ratio over {duration(slo.window_s)} <= {slo.healthy_error_ratio} counts as recovered; " + "; ".join(parts)
    if any(r.recovery_s is None and r.fault_at not in unjudged for r in recs):
        worst = max(end - r.fault_at for r in recs if r.recovery_s is None)
        return SLOResult(slo.name, slo.kind, Verdict.VIOLATED, worst, slo.max_s, "<=", "s", query, detail)
    judged = [r.recovery_s for r in recs if r.recovery_s is not None]
    if unjudged and not (judged and max(judged) > slo.max_s):
        return SLOResult(slo.name, slo.kind, Verdict.NO_DATA, None, slo.max_s, "<=", "s", query, detail)
    worst = max(judged)
    verdict = Verdict.MET if worst <= slo.max_s else Verdict.VIOLATED
    return SLOResult(slo.name, slo.kind, verdict, worst, slo.max_s, "<=", "s", query, detail)


def burn_rate_from_ratio(error_ratio: float | None, objective: float) -> float | None:
    """How many times faster than allowed the error budget burns: error ratio / (1 - objective)."""
    if not 0 < objective < 1:
        raise SLOError(f"objective must be between 0 and 1 (exclusive), got {objective}")
    return None if error_ratio is None else error_ratio / (1 - objective)


def _healthy(v: float | None, limit: float) -> bool:
    return v is not None and not math.isnan(v) and v <= limit


def _s(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _on(route: str | None) -> str:
    return "" if route is None else f" on route {route}"


def grid(series: Sequence[Series], start: float, end: float, step: float) -> list[tuple[float, float | None]]:
    """A range result as one point per step, None where Prometheus had no value (pure)."""
    if len(series) > 1:
        raise ValueError(f"expected one series, got {len(series)}; aggregate the query")
    have = {round(t, 3): v for t, v in series[0].points} if series else {}
    n = int(math.floor((end - start) / step + 1e-9))
    out: list[tuple[float, float | None]] = []
    for k in range(n + 1):
        t = start + k * step
        v = have.get(round(t, 3))
        out.append((t, None if v is None or math.isnan(v) else v))
    return out


# --- against Prometheus -------------------------------------------------------------------

def evaluate(slos: Sequence[SLO], prom: PrometheusAPI, backend: str | Backend, start: float, end: float,
             fault_times: Sequence[float] = (), *, step_s: float = 1.0,
             fault_ends: Sequence[float | None] = ()) -> list[SLOResult]:
    """Judge every SLO over ``[start, end]`` (unix seconds) from ``backend``'s metrics in Prometheus.

    Call it once Prometheus has scraped past ``end``. A query Prometheus rejects (a bad PromQL SLO)
    gives that SLO an ``error`` verdict; Prometheus being down raises ``PrometheusUnavailable``.
    """
    b = backend_named(backend)
    check_slos(slos, b)
    if not end > start:
        raise SLOError(f"the window must have end > start, got start={start} end={end}")
    window_s = end - start
    window = duration(window_s)
    results = []
    for slo in slos:
        query = ""
        try:
            if isinstance(slo, Availability):
                query = availability_query(b, window_s, slo.route)
                results.append(judge_availability(slo, single_value(prom.query(query, at=end)), query, window))
            elif isinstance(slo, Latency):
                query = latency_query(b, slo.percentile, window_s, slo.route)
                results.append(judge_latency(slo, single_value(prom.query(query, at=end)), query, window))
            elif isinstance(slo, PromQL):
                query = promql_query(slo, window_s)
                results.append(judge_promql(slo, single_value(prom.query(query, at=end)), query, window))
            else:
                query = error_ratio_query(b, slo.window_s, slo.route)
                ends = list(fault_ends) or [None] * len(fault_times)
                faults = [f for f in fault_times if start <= f <= end]
                faults_end = [e for f, e in zip(fault_times, ends, strict=True) if start <= f <= end]
                if fault_times and not faults:
                    results.append(SLOResult(slo.name, slo.kind, Verdict.NO_DATA, None, slo.max_s, "<=", "s", query,
                                             f"every fault time {list(fault_times)} is outside the window [{start}, {end}]"))
                    continue
                first = min(faults, default=end)
                step = max(step_s, (end - first) / _MAX_POINTS)  # Prometheus refuses more than 11,000 points
                points = grid(prom.query_range(query, first, end, step), first, end, step) if faults else []
                results.append(judge_recovery(slo, points, faults, query, faults_end if fault_ends else ()))
        except (PrometheusQueryError, ValueError) as e:
            if isinstance(e, SLOError):
                raise
            results.append(SLOResult(slo.name, slo.kind, Verdict.ERROR, None, _threshold(slo), "", "", query, str(e)))
    return results


def burn_rate(prom: PrometheusAPI, backend: str | Backend, objective: float, at: float, window_s: float,
              route: str | None = None) -> float | None:
    """Error-budget burn rate over ``(at - window_s, at]``; None when no request was counted."""
    burn_rate_from_ratio(0.0, objective)  # a bad objective fails before any query
    q = error_ratio_query(backend_named(backend), window_s, route)
    return burn_rate_from_ratio(single_value(prom.query(q, at=at)), objective)


def _threshold(slo: SLO) -> float:
    if isinstance(slo, Availability):
        return slo.objective
    if isinstance(slo, Latency):
        return slo.threshold_ms
    if isinstance(slo, Recovery):
        return slo.max_s
    return slo.threshold
