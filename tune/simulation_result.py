"""What a simulation produces: per-request outcomes, replica counts over time, a per-step
timeline, the scaling decisions, and a summary (``tune.simulator`` fills them in)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tune.simulation_settings import SimulationSettings

OUTCOMES = ("ok", "rejected", "timeout", "no_replica", "replica_died", "unfinished")
_FAILED = ("timeout", "no_replica", "replica_died")


@dataclass(slots=True)
class RequestOutcome:
    arrival_s: float
    outcome: str  # one of OUTCOMES
    latency_s: float | None  # arrival to answer or failure; None when unfinished
    queued_s: float | None  # arrival to its (last) start at a replica; None if it never started
    retries: int = 0


@dataclass(frozen=True, slots=True)
class ReplicaCount:
    """Replica counts from ``t_s`` until the next change."""

    t_s: float
    target: int
    starting: int
    running: int
    stopping: int


@dataclass(slots=True)
class TimelineRow:
    """Gauges at ``t_s``; counts of what happened in [t_s, t_s + step)."""

    t_s: float
    target: int
    starting: int
    running: int
    stopping: int
    queued: int
    ongoing: int
    arrivals: int = 0
    completions: int = 0
    rejected: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    t_s: float
    before: int
    after: int
    reason: str
    demand: int


@dataclass(frozen=True)
class Summary:
    duration_s: float
    requests: int
    outcomes: dict[str, int]
    availability: float | None  # ok / answered-or-failed (unfinished ones excluded)
    p50_s: float | None  # of ok requests, from arrival; nearest rank
    p95_s: float | None
    p99_s: float | None
    max_s: float | None
    max_replicas: int  # most RUNNING at once
    mean_replicas: float  # RUNNING, averaged over time
    replica_seconds: float  # starting + running + stopping: what the deployment held
    time_to_replicas_s: dict[int, float]  # first time n replicas were RUNNING
    replicas_started: int
    replicas_killed: int
    kills_skipped: int  # failure times with no RUNNING replica to kill


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest rank (an observed value, never interpolated), as loadgen and the benchmarks."""
    if not sorted_values:
        return None
    # round first, as loadgen: 99.9 / 100 * 1000 is 999.0000000000001, whose ceiling would skip a rank
    rank = max(1, math.ceil(round(pct / 100 * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(end: float, outcomes: Sequence[RequestOutcome], changes: Sequence[ReplicaCount], held_area: float,
              running_area: float, started: int, killed: int, kills_skipped: int) -> Summary:
    """The run's figures from its requests and its replica counts (``*_area``: replica-seconds
    held, and running, over the run). Pure."""
    counts = {k: 0 for k in OUTCOMES}
    for o in outcomes:
        counts[o.outcome] += 1
    ok = sorted(o.latency_s for o in outcomes if o.outcome == "ok" and o.latency_s is not None)
    settled = len(outcomes) - counts["unfinished"]
    reached: dict[int, float] = {}
    for c in changes:
        for k in range(1, c.running + 1):
            reached.setdefault(k, c.t_s)
    return Summary(
        duration_s=end, requests=len(outcomes), outcomes=counts,
        availability=counts["ok"] / settled if settled else None,
        p50_s=percentile(ok, 50), p95_s=percentile(ok, 95), p99_s=percentile(ok, 99),
        max_s=ok[-1] if ok else None,
        max_replicas=max(c.running for c in changes),
        mean_replicas=running_area / end if end > 0 else float(changes[-1].running),
        replica_seconds=held_area, time_to_replicas_s=reached,
        replicas_started=started, replicas_killed=killed, kills_skipped=kills_skipped,
    )


@dataclass
class SimulationResult:
    settings: SimulationSettings
    end_s: float
    requests: list[RequestOutcome]
    timeline: list[TimelineRow]
    replica_changes: list[ReplicaCount]
    decisions: list[ScaleDecision]
    summary: Summary
    _times: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._times = [c.t_s for c in self.replica_changes]

    def counts_at(self, t: float) -> ReplicaCount:
        """Replica counts in effect at time ``t``."""
        return self.replica_changes[max(0, bisect_right(self._times, t) - 1)]

    def time_to_replicas(self, n: int, after: float = 0.0) -> float | None:
        """Seconds from ``after`` until at least ``n`` replicas were RUNNING (None: never)."""
        if self.counts_at(after).running >= n:
            return 0.0
        for c in self.replica_changes:
            if c.t_s > after and c.running >= n:
                return c.t_s - after
        return None

    def to_dict(self, timeline: bool = True, requests: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "settings": self.settings.model_dump(mode="json"), "end_s": self.end_s,
            "summary": asdict(self.summary),
            "decisions": [asdict(d) for d in self.decisions],
            "replica_changes": [asdict(c) for c in self.replica_changes],
        }
        if timeline:
            doc["timeline"] = [asdict(r) for r in self.timeline]
        if requests:
            doc["requests"] = [asdict(r) for r in self.requests]
        return doc
