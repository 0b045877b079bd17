"""The summary of a run, computed from its records (pure)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from loadgen.records import CANCELLED, MISSED, cause


class LatencyStats(BaseModel):
    """Seconds from intended start; percentiles by nearest rank (an observed value, never interpolated)."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None


class Summary(BaseModel):
    scheduled: int = Field(..., description="Requests in the schedule.")
    sent: int = Field(..., description="Requests started (scheduled minus missed minus not started); "
                      "ok + failed + cancelled.")
    ok: int = Field(..., description="Answered with a 2xx status.")
    failed: int = Field(..., description="Sent, and answered with another status or failed (timeout, ...).")
    cancelled: int = Field(0, description="Sent, but the run was stopped before their answer: not judged.")
    failed_by_cause: dict[str, int] = Field(default_factory=dict, description="Status ('503') or error kind "
                                            "('timeout', 'refused', 'reset', 'cancelled', ...) to count.")
    retried: int = Field(0, description="Requests sent to the next target after their first attempt failed: "
                         "refused (never reached it), or with retry_reset, reset before any answer.")
    retried_after_reset: int = Field(0, description="Of those, idempotent requests whose first connection ended "
                                     "before any answer (retry_reset): the first target had accepted them.")
    late_starts: int = Field(0, description="Sent later than the late tolerance after their intended time.")
    missed_starts: int = Field(0, description="Not sent: the in-flight cap was reached.")
    not_started: int = Field(0, description="Not reached: the run was stopped (or a worker died) first.")
    latency_s: LatencyStats = Field(default_factory=LatencyStats, description="Every sent request (but the "
                                    "cancelled), from its intended start to its answer or failure.")
    ok_latency_s: LatencyStats = Field(default_factory=LatencyStats, description="Only the ok requests.")
    intended_rate_per_s: float | None = Field(None, description="scheduled / duration_s.")
    achieved_rate_per_s: float | None = Field(None, description="(sent - 1) / span of actual starts.")
    duration_s: float = Field(0.0, description="The profile's duration.")
    started_at: float | None = Field(None, description="Unix time of the first intended start.")
    finished_at: float | None = Field(None, description="Unix time of the last answer or failure.")
    complete: bool = Field(True, description="Every worker ran its whole shard (not stopped early, none lost).")
    workers: int = 1
    targets: list[str] = Field(default_factory=list)
    route: str = "/"
    method: str = "GET"
    records_path: str | None = None


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence: the smallest value with at least p% at or below it."""
    if not ordered:
        return None
    # round first: 99.9 / 100 * 1000 is 999.0000000000001, whose ceiling would skip a rank
    rank = max(1, math.ceil(round(p / 100 * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_stats(values: Iterable[float]) -> LatencyStats:
    ordered = sorted(values)
    if not ordered:
        return LatencyStats()
    return LatencyStats(
        count=len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        max=ordered[-1],
        mean=sum(ordered) / len(ordered),
    )


def _rate(times: list[float]) -> float | None:
    if len(times) < 2:
        return None
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else None


def summarize(records: Iterable[dict[str, Any]], scheduled: int, duration_s: float = 0.0,
              complete: bool = True, **meta: Any) -> Summary:
    """Count ``records`` (dicts as in records.jsonl) against a schedule of ``scheduled`` starts."""
    sent = ok = retried = after_reset = late = missed = cancelled = 0
    causes: Counter[str] = Counter()
    all_latency: list[float] = []
    ok_latency: list[float] = []
    intended: list[float] = []
    started: list[float] = []
    finished_at: float | None = None
    for r in records:
        intended.append(r["intended"])
        if r.get("error") == MISSED:
            missed += 1
            continue
        sent += 1
        started.append(r["started"])
        retried += bool(r.get("retried"))
        after_reset += r.get("retry") == "reset"
        late += bool(r.get("late"))
        why = cause(r)
        if why == CANCELLED:  # cut short by a stop: says nothing about the server
            cancelled += 1
            continue
        if why is None:
            ok += 1
        else:
            causes[why] += 1
        if r.get("latency_s") is not None:
            all_latency.append(r["latency_s"])
            if why is None:
                ok_latency.append(r["latency_s"])
            end = r["intended"] + r["latency_s"]
            finished_at = end if finished_at is None else max(finished_at, end)
    seen = sent + missed
    return Summary(
        scheduled=scheduled,
        sent=sent,
        ok=ok,
        failed=sent - ok - cancelled,
        cancelled=cancelled,
        failed_by_cause=dict(sorted(causes.items())),
        retried=retried,
        retried_after_reset=after_reset,
        late_starts=late,
        missed_starts=missed,
        not_started=max(0, scheduled - seen),
        latency_s=latency_stats(all_latency),
        ok_latency_s=latency_stats(ok_latency),
        intended_rate_per_s=scheduled / duration_s if duration_s > 0 else None,
        achieved_rate_per_s=_rate(started),
        duration_s=duration_s,
        started_at=min(intended) if intended else None,
        finished_at=finished_at,
        complete=complete and seen == scheduled,
        **meta,
    )
