"""Trace-driven simulation of one autoscaled deployment, in seconds of compute.

The controller's own scale step (``scale_step``: demand freshness, then ``autoscaler.decide``),
the real scale plan (``deployment_state.plan``) and
the real routing choice (``router.choose``) run against a model of what surrounds them in a
live cluster, on a simulated clock:

- one caller (one proxy) routes every request. It counts what it has in flight per replica,
  so ``max_ongoing_requests`` holds without the replica ever refusing; the rest waits in the
  caller's queue (503 past ``max_queued_requests``; at zero replicas at most
  ``router.HELD_AT_ZERO_MAX``, for ``no_replica_timeout_s``).
- the caller reports its demand (running plus queued, on replicas it still routes to) every
  ``report_interval_s``, and at once when a request finds no replica; a report counts for
  ``demand_fresh_s``.
- the controller ticks every ``controller_period_s``: it takes its scale step (records the
  demand, asks ``decide`` for a size) and asks ``plan`` for what to start and stop. A report that finds the deployment at
  zero scales it at once, as ``Controller.report_demand`` does.
- a replica takes a sampled start time before it is RUNNING, and a sampled discovery time
  before the caller routes to it; each request a sampled service time, whatever the load (no
  CPU contention is modelled).
- a downscaled replica takes no new request, finishes its in-flight ones and exits (not
  before ``DRAIN_GRACE_S``). A killed replica loses its in-flight requests (retried up to
  ``router.MAX_RETRIES`` times when idempotent); the next tick starts a replacement.

Pure and deterministic: no wall clock, no I/O; every random draw comes from a
``random.Random`` seeded from ``seed``, one stream per purpose, so that two settings run on
the same seed see the same service times request by request.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from serve_core.control import deployment_state as ds
from serve_core.control.autoscaler import AutoscalerState
from serve_core.control.scale_step import fresh_demand, scale_step
from serve_core.data.router import HELD_AT_ZERO_MAX, MAX_RETRIES, choose
from serve_core.errors import ConfigError
from serve_core.ids import DeploymentID, ReplicaState
from tune.simulation_result import (
    ReplicaCount,
    RequestOutcome,
    ScaleDecision,
    SimulationResult,
    Summary,
    TimelineRow,
    summarize,
)
from tune.simulation_settings import (  # re-exported: the simulator's whole API is here
    DEMAND_FRESH_S,
    DRAIN_GRACE_S,
    LOOP_PERIOD_S,
    REPORT_INTERVAL_S,
    ConstantTime,
    LognormalTime,
    SampledTime,
    SimulationSettings,
    TimeModel,
    arrivals_from_rates,
    load_settings,
)

__all__ = [
    "DEMAND_FRESH_S", "DRAIN_GRACE_S", "LOOP_PERIOD_S", "REPORT_INTERVAL_S", "ConstantTime", "LognormalTime", "SampledTime", "SimulationResult", "SimulationSettings", "Summary",
    "TimeModel", "arrivals_from_rates", "load_settings", "simulate",
]


# --------------------------------------------------------------------------- engine
_TICK, _REPORT, _READY, _DONE, _DRAINED, _DRAIN_LIMIT, _KILL, _TIMEOUT, _HELD, _ROUTABLE = range(10)
_QUEUED, _RUNNING, _DONE_STATE = 1, 2, 3


class _Req:
    __slots__ = ("arrival", "service", "state", "replica", "attempt", "retries", "held", "started", "end", "outcome")

    def __init__(self, arrival: float, service: float) -> None:
        self.arrival, self.service = arrival, service
        self.state = 0
        self.replica: _Replica | None = None
        self.attempt = self.retries = 0
        self.held = False
        self.started: float | None = None
        self.end: float | None = None
        self.outcome = "unfinished"


class _Replica:
    __slots__ = ("rid", "record", "inflight", "reqs", "drained")

    def __init__(self, record: ds.ReplicaRecord) -> None:
        self.rid, self.record = record.replica_id, record
        self.inflight = 0
        self.reqs: set[_Req] = set()
        self.drained = False  # past the drain grace: exits once idle


class _Sim:
    def __init__(self, arrivals: list[float], s: SimulationSettings) -> None:
        self.s, self.cfg = s, s.autoscaling_config
        self.arrivals = arrivals
        self.end = s.duration_s if s.duration_s is not None else math.inf

        def stream(name: str) -> random.Random:
            return random.Random(f"{s.seed}/{name}")

        self.service = s.service_time.sampler(stream("service"))
        self.start_time = s.replica_start_time.sampler(stream("start"))
        self.discovery = s.discovery_time.sampler(stream("discovery"))
        self.route_rng, self.fault_rng = stream("route"), stream("faults")
        self.heap: list[tuple[float, int, int, Any, int]] = []
        self.seq = itertools.count()
        self.rids = itertools.count(1)
        self.now = 0.0
        self.replicas: dict[str, _Replica] = {}  # the controller's records
        self.routable: dict[str, _Replica] = {}  # RUNNING replicas the caller routes to
        self.queue: deque[_Req] = deque()
        self.queued = 0
        self.pending = 0  # arrived, not yet answered or failed
        self.requests: list[_Req] = []
        # The controller started long before the trace: its restart guard is not in play.
        self.state = AutoscalerState(created_at=-math.inf)
        ac = self.cfg
        self.target = ac.initial_replicas if ac.initial_replicas is not None else ac.min_replicas
        self.dtarget = ds.DeploymentTarget(DeploymentID("sim", "sim"), b"", b"", {}, self.target)
        self.version, self.config_version = self.dtarget.code_version(), self.dtarget.config_version()
        self.report: tuple[float, int] = (-math.inf, 0)  # the caller's last report: when, demand
        self.last_reported: int | None = None
        self.report_gen = 0
        self.woke_at = -math.inf
        self.decisions: list[ScaleDecision] = []
        self.changes: list[ReplicaCount] = []
        self.held_area = self.running_area = 0.0
        self.started = self.killed = self.kills_skipped = 0
        self.cum = {"arrivals": 0, "completions": 0, "rejected": 0, "failed": 0}
        self.rows: list[TimelineRow] = []
        self.row_cum = dict(self.cum)
        self.next_row = 0

    # -- clock -------------------------------------------------------------------------

    def push(self, t: float, kind: int, obj: Any = None, n: int = 0) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, obj, n))

    def run(self) -> SimulationResult:
        s = self.s
        for _ in range(self.target):  # warm: the deployment is up before the trace starts
            rep = self._new_replica(-1.0)
            rep.record.state = ReplicaState.RUNNING
            self.routable[rep.rid] = rep
        self._changed(0.0)
        phase = random.Random(f"{s.seed}/phase")  # where the two loops are in their periods at t=0
        self.push(phase.uniform(0, s.controller_period_s), _TICK)
        self.push(phase.uniform(0, s.report_interval_s), _REPORT, None, self.report_gen)
        for t in sorted(s.replica_failures_s):
            self.push(t, _KILL)
        arrivals, n, i = self.arrivals, len(self.arrivals), 0
        heap = self.heap
        handlers: list[Callable[[float, Any, int], None]] = [  # by event kind
            self._tick, self._report, self._ready, self._done, self._drained, self._drain_limit,
            self._kill, self._timeout, self._held_timeout, self._routable]
        while True:
            if i >= n and self.pending == 0 and s.duration_s is None:
                break  # every request answered
            t_arr = arrivals[i] if i < n else math.inf
            t_ev = heap[0][0] if heap else math.inf
            t = t_ev if t_ev <= t_arr else t_arr
            if t > self.end:
                break
            if t >= self.next_row * s.timeline_step_s:
                self._rows_until(t)
            self.now = t
            if t_ev <= t_arr:  # at equal times a completion frees its slot before the arrival
                _, _, kind, obj, k = heapq.heappop(heap)
                handlers[kind](t, obj, k)
            else:
                self._arrive(t)
                i += 1
        end = self.end if s.duration_s is not None else self.now
        self._rows_until(end)
        return self._result(end)

    # -- caller ------------------------------------------------------------------------

    def _arrive(self, t: float) -> None:
        req = _Req(t, self.service())  # one draw per arrival: same request, same time, any settings
        self.requests.append(req)
        self.pending += 1
        self.cum["arrivals"] += 1
        if self.s.request_timeout_s is not None:
            self.push(t + self.s.request_timeout_s, _TIMEOUT, req)
        self._acquire(t, req)

    def _acquire(self, t: float, req: _Req) -> None:
        """Router._acquire: the less loaded of two replicas with room, else wait in the queue."""
        if self._dispatch(t, req):
            return
        if self.s.max_queued_requests >= 0 and self.queued >= self.s.max_queued_requests:
            self._finish(t, req, "rejected")
            return
        if not self.routable:
            if self.queued >= HELD_AT_ZERO_MAX:
                self._finish(t, req, "rejected")
                return
            self._wake_report(t)  # Router.on_starved: the caller reports at once
            if not req.held:
                req.held = True
                self.push(t + self.s.no_replica_timeout_s, _HELD, req)
        req.state = _QUEUED
        self.queue.append(req)
        self.queued += 1

    def _dispatch(self, t: float, req: _Req) -> bool:
        if not self.routable:
            return False
        loads = [(rid, r.inflight) for rid, r in self.routable.items()]
        pick = choose(loads, self.s.max_ongoing_requests, self.route_rng)
        if pick is None:
            return False
        rep = self.routable[pick]
        rep.inflight += 1
        rep.reqs.add(req)
        req.state, req.replica, req.started = _RUNNING, rep, t
        req.attempt += 1
        self.push(t + req.service, _DONE, req, req.attempt)
        return True

    def _pump(self, t: float) -> None:
        """Queued requests go to free slots in arrival order (each release wakes one waiter)."""
        q = self.queue
        while q:
            req = q[0]
            if req.state != _QUEUED:  # timed out while queued
                q.popleft()
                continue
            if not self._dispatch(t, req):
                return
            q.popleft()
            self.queued -= 1

    def _release(self, t: float, rep: _Replica, req: _Req) -> None:
        rep.inflight -= 1
        rep.reqs.discard(req)
        if rep.record.state == ReplicaState.STOPPING:
            if rep.drained and rep.inflight == 0:
                self._remove(t, rep)
        else:
            self._pump(t)

    def _finish(self, t: float, req: _Req, outcome: str) -> None:
        req.state, req.end, req.outcome = _DONE_STATE, t, outcome
        self.pending -= 1
        key = "completions" if outcome == "ok" else "rejected" if outcome == "rejected" else "failed"
        self.cum[key] += 1

    def _done(self, t: float, req: _Req, attempt: int) -> None:
        if req.state != _RUNNING or req.attempt != attempt:
            return  # timed out or lost before it finished
        rep = req.replica
        assert rep is not None
        self._finish(t, req, "ok")
        self._release(t, rep, req)

    def _timeout(self, t: float, req: _Req, _n: int = 0) -> None:
        if req.state == _QUEUED:
            self.queued -= 1  # its queue entry is skipped when reached
            self._finish(t, req, "timeout")
        elif req.state == _RUNNING:  # the caller cancels it at the replica: the slot frees
            rep = req.replica
            assert rep is not None
            self._finish(t, req, "timeout")
            self._release(t, rep, req)

    def _held_timeout(self, t: float, req: _Req, _n: int = 0) -> None:
        if req.state == _QUEUED and not self.routable:
            self.queued -= 1
            self._finish(t, req, "no_replica")

    def _demand(self) -> int:
        # Router.demand: a downscaled replica's connection is dropped at once, its requests with it.
        return sum(r.inflight for r in self.routable.values()) + self.queued

    def _wake_report(self, t: float) -> None:
        if self.woke_at == t:
            return
        self.woke_at = t
        self.report_gen += 1  # the periodic reports restart from this one
        self.push(t, _REPORT, None, self.report_gen)

    def _report(self, t: float, _o: Any, gen: int) -> None:
        if gen != self.report_gen:
            return
        self.push(t + self.s.report_interval_s, _REPORT, None, gen)
        d = self._demand()
        if d == 0 and self.last_reported == 0:
            return  # idle and already said so
        self.report, self.last_reported = (t, d), d
        if d and self.target == 0 and self._autoscale(t):
            self._plan(t, stop=False)  # Controller.report_demand: from zero, start now

    # -- controller --------------------------------------------------------------------

    def _tick(self, t: float, _o: Any = None, _n: int = 0) -> None:
        self.push(t + self.s.controller_period_s, _TICK)
        self._autoscale(t)
        self._plan(t)

    def _autoscale(self, t: float) -> bool:
        # The controller's own step: the caller's report counts while fresh, then the policy.
        when, d = self.report
        total = fresh_demand({"caller": (when, {"d": d})}, "d", t, self.s.demand_fresh_s)
        decision = scale_step(self.cfg, self.target, self.state, total, t)
        if decision.desired == self.target:
            return False
        self.decisions.append(ScaleDecision(t, self.target, decision.desired, decision.reason, total))
        self.target = decision.desired
        self._changed(t)
        return True

    def _plan(self, t: float, stop: bool = True) -> None:
        live = sum(1 for r in self.replicas.values() if r.record.state != ReplicaState.STOPPING)
        if live == self.target:
            return
        self.dtarget.target_replicas = self.target
        p = ds.plan(self.dtarget, {rid: r.record for rid, r in self.replicas.items()}, False)
        for _ in range(p.start):
            rep = self._new_replica(t)
            self.started += 1
            self.push(t + self.start_time(), _READY, rep)
        for rid in p.stop if stop else ():
            self._stop(t, self.replicas[rid])
        self._changed(t)

    def _new_replica(self, t: float) -> _Replica:
        n = next(self.rids)
        # started_at orders "newest first" in plan(); n keeps replicas started together apart
        rec = ds.ReplicaRecord(f"r{n}", f"r{n}", self.version, self.config_version, started_at=t + n * 1e-9)
        rep = self.replicas[rec.replica_id] = _Replica(rec)
        return rep

    def _ready(self, t: float, rep: _Replica, _n: int = 0) -> None:
        if self.replicas.get(rep.rid) is not rep or rep.record.state != ReplicaState.STARTING:
            return  # stopped while starting
        rep.record.state = ReplicaState.RUNNING
        self._changed(t)
        delay = self.discovery()
        if delay > 0:
            self.push(t + delay, _ROUTABLE, rep)
        else:
            self._routable(t, rep)

    def _routable(self, t: float, rep: _Replica, _n: int = 0) -> None:
        """The caller has the new replica set and a connection: requests go to the replica."""
        if self.replicas.get(rep.rid) is rep and rep.record.state == ReplicaState.RUNNING:
            self.routable[rep.rid] = rep
            self._pump(t)

    def _stop(self, t: float, rep: _Replica) -> None:
        if rep.record.state == ReplicaState.STARTING:
            self._remove(t, rep)  # killed at once: it holds no request
            return
        rep.record.state = ReplicaState.STOPPING
        self.routable.pop(rep.rid, None)
        self.push(t + DRAIN_GRACE_S, _DRAINED, rep)
        self.push(t + DRAIN_GRACE_S + self.s.graceful_shutdown_timeout_s, _DRAIN_LIMIT, rep)

    def _drained(self, t: float, rep: _Replica, _n: int = 0) -> None:
        rep.drained = True
        if rep.inflight == 0 and self.replicas.get(rep.rid) is rep:
            self._remove(t, rep)

    def _drain_limit(self, t: float, rep: _Replica, _n: int = 0) -> None:
        if self.replicas.get(rep.rid) is rep:
            self._lose(t, rep)

    def _kill(self, t: float, _o: Any = None, _n: int = 0) -> None:
        running = [r for r in self.replicas.values() if r.record.state == ReplicaState.RUNNING]
        if not running:
            self.kills_skipped += 1
            return
        self.killed += 1
        self._lose(t, self.fault_rng.choice(running))

    def _lose(self, t: float, rep: _Replica) -> None:
        """The replica is gone: what it held fails, or is retried elsewhere when idempotent."""
        self._remove(t, rep)
        lost = sorted(rep.reqs, key=lambda r: r.arrival)
        rep.reqs.clear()
        rep.inflight = 0
        for req in lost:
            if self.s.idempotent and req.retries < MAX_RETRIES:
                req.retries += 1
                req.state = 0
                self._acquire(t, req)
            else:
                self._finish(t, req, "replica_died")

    def _remove(self, t: float, rep: _Replica) -> None:
        self.replicas.pop(rep.rid, None)
        self.routable.pop(rep.rid, None)
        self._changed(t)

    # -- records -----------------------------------------------------------------------

    def _counts(self) -> tuple[int, int, int]:
        n = Counter(r.record.state for r in self.replicas.values())
        return n[ReplicaState.STARTING], n[ReplicaState.RUNNING], n[ReplicaState.STOPPING]

    def _changed(self, t: float) -> None:
        starting, running, stopping = self._counts()
        c = ReplicaCount(max(t, 0.0), self.target, starting, running, stopping)
        if self.changes:
            last = self.changes[-1]
            if (last.target, last.starting, last.running, last.stopping) == (c.target, starting, running, stopping):
                return
            dt = c.t_s - last.t_s
            self.held_area += dt * (last.starting + last.running + last.stopping)
            self.running_area += dt * last.running
            if dt == 0:
                self.changes.pop()
        self.changes.append(c)

    def _rows_until(self, t: float) -> None:
        """Close the rows that end at or before ``t`` and open the next ones."""
        step = self.s.timeline_step_s
        while self.next_row * step <= t:
            self._close_row()
            starting, running, stopping = self._counts()
            ongoing = sum(r.inflight for r in self.replicas.values())
            self.rows.append(TimelineRow(self.next_row * step, self.target, starting, running, stopping,
                                         self.queued, ongoing))
            self.row_cum = dict(self.cum)
            self.next_row += 1

    def _close_row(self) -> None:
        if self.rows:
            row, c, c0 = self.rows[-1], self.cum, self.row_cum
            row.arrivals, row.completions = c["arrivals"] - c0["arrivals"], c["completions"] - c0["completions"]
            row.rejected, row.failed = c["rejected"] - c0["rejected"], c["failed"] - c0["failed"]

    def _result(self, end: float) -> SimulationResult:
        self._close_row()
        last = self.changes[-1]
        self.held_area += (end - last.t_s) * (last.starting + last.running + last.stopping)
        self.running_area += (end - last.t_s) * last.running
        overhead = self.s.overhead_s
        outcomes = []
        for r in self.requests:
            latency = None if r.end is None else r.end - r.arrival + (overhead if r.outcome != "timeout" else 0.0)
            queued = r.started - r.arrival if r.started is not None else None
            outcomes.append(RequestOutcome(r.arrival, r.outcome, latency, queued, r.retries))
        summary = summarize(end, outcomes, self.changes, self.held_area, self.running_area,
                            self.started, self.killed, self.kills_skipped)
        return SimulationResult(self.s, end, outcomes, self.rows, self.changes, self.decisions, summary)


def simulate(arrivals: Sequence[float], settings: SimulationSettings) -> SimulationResult:
    """Run ``settings`` against arrival times (seconds from the start, any order)."""
    times = list(arrivals)
    for i, t in enumerate(times):
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 0):
            raise ConfigError(f"arrivals[{i}]", t, "arrival times are seconds >= 0 from the start of the trace")
    if any(b < a for a, b in itertools.pairwise(times)):
        times.sort()
    if not times and settings.duration_s is None:
        raise ConfigError("arrivals", [], "no arrival to simulate; give some, or set duration_s to watch an idle deployment")
    return _Sim(times, settings).run()
