"""The search: candidate settings from the sweep's space (a grid, or seeded random draws), each
run through the simulator on the sweep's arrivals and judged against its SLOs. Pure: the
only randomness is ``random.Random(seed)``, so one sweep gives one list, in one order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.slo.spec import SLO, Availability, Latency
from chaos.spec.experiment import Fault
from loadgen.schedule import build_schedule
from tune.simulation_result import SimulationResult, percentile
from tune.simulation_settings import ConstantTime, LognormalTime, SampledTime, SimulationSettings
from tune.simulator import simulate
from tune.sweep import INTEGER_PARAMS, Sweep, SweepError


@dataclass(frozen=True)
class Candidate:
    """One setting: the swept values (name -> value), and a label for tables."""

    values: dict[str, float]
    label: str = ""

    def key(self) -> tuple[tuple[str, float], ...]:
        return tuple(sorted(self.values.items()))


@dataclass
class Figures:
    """What one run (simulated or real) achieved and cost."""

    requests: int
    ok: int
    availability: float | None  # ok / settled
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    attainment: float | None  # share of settled requests ok and under every latency SLO's threshold
    replica_seconds: float  # what the deployment held (simulated: starting + running + stopping)
    running_replica_seconds: float  # RUNNING replicas only (what a real run's gauge shows)
    cpu_seconds: float
    gpu_seconds: float
    max_replicas: int
    slos: dict[str, bool | None] = field(default_factory=dict)  # name -> met (None: not judged)

    @property
    def all_met(self) -> bool:
        judged = [v for v in self.slos.values() if v is not None]
        return bool(judged) and all(judged)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "all_met": self.all_met}


@dataclass
class Evaluated:
    candidate: Candidate
    figures: Figures


def candidates(sweep: Sweep) -> list[Candidate]:
    """The settings to simulate: every grid point, or ``samples`` seeded draws (no duplicates)."""
    ranges = sweep.space.ranges()
    names = list(ranges)
    if not names:
        return [Candidate({}, "base")]
    if sweep.search.kind == "grid":
        grids = [ranges[n].grid() if ranges[n].values is not None or ranges[n].step is not None
                 else _two_ends(ranges[n].min, ranges[n].max) for n in names]
        size = math.prod(len(g) for g in grids)
        if size > sweep.search.max_candidates:
            raise SweepError("search.max_candidates", sweep.search.max_candidates,
                             f"the grid has {size} settings ({' x '.join(str(len(g)) for g in grids)}); coarsen a step, "
                             "raise max_candidates or use kind: random")
        combos = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
    else:
        rng = random.Random(f"{sweep.search.seed}/search")
        seen: set[tuple[tuple[str, float], ...]] = set()
        combos = []
        for _ in range(sweep.search.samples * 20):  # a small space runs out of new draws
            if len(combos) >= sweep.search.samples:
                break
            combo = {n: _rounded(n, ranges[n].sample(rng, n in INTEGER_PARAMS)) for n in names}
            k = tuple(sorted(combo.items()))
            if k not in seen:
                seen.add(k)
                combos.append(combo)
    return [Candidate(c, f"c{i}") for i, c in enumerate(combos)]


def _two_ends(lo: float | None, hi: float | None) -> list[float]:
    return sorted({v for v in (lo, hi) if v is not None})


def _rounded(name: str, v: float) -> float:
    return float(round(v)) if name in INTEGER_PARAMS else round(v, 3)


def arrivals(sweep: Sweep) -> list[float]:
    """The sweep's arrival times (seconds from the start), as loadgen schedules them."""
    return list(build_schedule(sweep.load.profile).offsets)


def run_seconds(sweep: Sweep, times: Sequence[float]) -> float:
    duration = getattr(sweep.load.profile, "duration_s", None)
    return float(duration) if duration else (max(times) if times else 0.0)


def failure_times(faults: Sequence[Fault], during: tuple[float, float]) -> list[float]:
    """kill-replica times the simulator can replay (at_s and every_s schedules)."""
    out: list[float] = []
    for f in faults:
        if f.action != "kill-replica":
            continue
        if f.schedule.at_s is not None:
            out.append(f.schedule.at_s)
        else:
            out += f.schedule.every_times(during)
    return sorted(out)


def judge(result: SimulationResult, slos: Sequence[SLO], num_cpus: float, num_gpus: float) -> Figures:
    """The simulated run's figures against the SLOs (availability and latency; others are not judged)."""
    s = result.summary
    ok = sorted(r.latency_s for r in result.requests if r.outcome == "ok" and r.latency_s is not None)
    settled = s.requests - s.outcomes.get("unfinished", 0)
    running = s.mean_replicas * result.end_s
    return figures_of(requests=s.requests, ok_latencies=ok, settled=settled, slos=slos,
                      replica_seconds=s.replica_seconds, running_replica_seconds=running,
                      max_replicas=s.max_replicas, num_cpus=num_cpus, num_gpus=num_gpus)


def figures_of(*, requests: int, ok_latencies: Sequence[float], settled: int, slos: Sequence[SLO],
               replica_seconds: float, running_replica_seconds: float, max_replicas: int,
               num_cpus: float, num_gpus: float) -> Figures:
    """Figures from the latencies of the ok requests (sorted) and the count of settled ones."""
    ok = list(ok_latencies)
    availability = len(ok) / settled if settled else None
    limits = [x.threshold_ms / 1000 for x in slos if isinstance(x, Latency)]
    limit = min(limits) if limits else math.inf
    good = sum(1 for v in ok if v < limit)
    met: dict[str, bool | None] = {}
    for x in slos:
        if isinstance(x, Availability):
            met[x.name] = None if availability is None else availability >= x.objective
        elif isinstance(x, Latency):
            p = percentile(ok, x.percentile)
            met[x.name] = None if p is None else p * 1000 < x.threshold_ms
    return Figures(requests, len(ok), availability, percentile(ok, 50), percentile(ok, 95), percentile(ok, 99),
                   good / settled if settled else None, replica_seconds, running_replica_seconds,
                   replica_seconds * num_cpus, replica_seconds * num_gpus, max_replicas, met)


def simulate_values(sweep: Sweep, times: Sequence[float], values: dict[str, float],
                    **extra: Any) -> tuple[SimulationSettings, Figures]:
    run_s = run_seconds(sweep, times)
    before, during, _ = sweep.windows(run_s)
    settings = sweep.settings(values, replica_failures_s=failure_times(sweep.faults, (before, before + during)),
                              **extra)
    result = simulate(times, settings)
    app = sweep.application
    return settings, judge(result, sweep.slos, app.num_cpus, app.num_gpus)


def evaluate(sweep: Sweep, times: Sequence[float] | None = None, forced: dict[str, float] | None = None,
             done: Callable[[int, int], None] = lambda n, total: None) -> list[Evaluated]:
    """Every candidate of the sweep, simulated on the sweep's arrivals (``forced`` values on top);
    ``done(n, total)`` after each (a progress bar)."""
    times = arrivals(sweep) if times is None else times
    cands = candidates(sweep)
    out = []
    for c in cands:
        out.append(Evaluated(c, simulate_values(sweep, times, {**c.values, **(forced or {})})[1]))
        done(len(out), len(cands))
    return out


def ranked(evaluated: Sequence[Evaluated]) -> list[Evaluated]:
    """Best first: those meeting every SLO by cost (then attainment), then the rest by attainment."""
    def key(e: Evaluated) -> tuple[int, float, float]:
        f = e.figures
        att = f.attainment if f.attainment is not None else 0.0
        return (0, f.replica_seconds, -att) if f.all_met else (1, -att, f.replica_seconds)

    return sorted(evaluated, key=key)


def mean_service_s(settings: SimulationSettings) -> float:
    m = settings.service_time
    if isinstance(m, ConstantTime):
        return m.seconds
    if isinstance(m, LognormalTime):
        return m.median_s * math.exp(m.sigma ** 2 / 2)
    assert isinstance(m, SampledTime)
    return sum(m.samples_s) / len(m.samples_s)


def peak_rate(times: Sequence[float], width_s: float = 1.0) -> float:
    """Most arrivals in any ``width_s`` bin, per second."""
    if not times:
        return 0.0
    bins: dict[int, int] = {}
    for t in times:
        bins[int(t // width_s)] = bins.get(int(t // width_s), 0) + 1
    return max(bins.values()) / width_s


def fixed_peak_replicas(peak: float, service_s: float, target_ongoing: float) -> int:
    """Replicas that hold the peak's concurrency (rate x service time) at ``target_ongoing`` each."""
    return max(1, math.ceil(peak * service_s / target_ongoing - 1e-9))
