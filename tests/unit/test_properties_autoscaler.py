"""Properties of the autoscaling policy and of the caller's bounded holding, with hypothesis.

The policy (``autoscaler.decide``) is stepped through random demand traces with a fake clock;
whatever the config and the trace, each decision stays within [min_replicas, max_replicas],
never scales down while the controller is younger than the look-back window (the restart
guard), leaves zero at once when a request waits, and settles on the replicas the demand
needs. The router's pure parts (``choose``) and its holding of requests at zero replicas
(bounded by ``max_queued_requests`` and ``HELD_AT_ZERO_MAX``) are checked without sockets.
"""

import asyncio
import math
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from serve_core.config import AutoscalingConfig
from serve_core.control.autoscaler import AutoscalerState, decide
from serve_core.data import router as router_mod
from serve_core.data.router import Router, choose
from serve_core.errors import BackPressureError
from serve_core.ids import DeploymentID, ReplicaAddress

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UP, DOWN = {"scale_up", "panic", "from_zero"}, {"scale_down", "to_zero"}


@st.composite
def configs(draw, max_delay=30.0, max_min_replicas=6):
    lo = draw(st.integers(0, max_min_replicas))
    hi = draw(st.integers(max(1, lo), 12))
    delay = st.floats(0, max_delay, allow_nan=False)
    factor = st.none() | st.floats(0.01, 1e300, allow_nan=False)  # huge factors must not overflow (inf is refused)
    return AutoscalingConfig(
        min_replicas=lo, max_replicas=hi,
        target_ongoing_requests=draw(st.floats(0.1, 50, allow_nan=False)),
        upscale_delay_s=draw(delay), downscale_delay_s=draw(delay),
        downscale_to_zero_delay_s=draw(st.none() | delay),
        upscaling_factor=draw(factor), downscaling_factor=draw(factor),
        look_back_period_s=draw(st.floats(0.5, max_delay, allow_nan=False)),
        metrics_interval_s=1.0,
        panic_threshold=draw(st.floats(1.01, 10, allow_nan=False)),
        panic_window_s=draw(delay),
    )


def start_replicas(draw, cfg):
    """A target the controller can hold: within the bounds (it clamps on every config change)."""
    return draw(st.integers(cfg.min_replicas, cfg.max_replicas))


demand_traces = st.lists(st.tuples(st.floats(0.05, 5, allow_nan=False), st.integers(0, 400)), min_size=1, max_size=60)


@SETTINGS
@given(st.data())
def test_every_decision_respects_bounds_guard_and_zero(data):
    cfg = data.draw(configs())
    current = start_replicas(data.draw, cfg)
    now = data.draw(st.floats(0, 1000, allow_nan=False))
    # created_at: long ago (an old controller) or within the look-back window (just restarted)
    state = AutoscalerState(created_at=now - data.draw(st.floats(0, 2 * cfg.look_back_period_s, allow_nan=False)))
    panic_until = -math.inf
    for dt, demand in data.draw(demand_traces):
        now += dt
        state.record(now, float(demand), cfg.look_back_period_s)
        d = decide(cfg, current, state, now)
        assert cfg.min_replicas <= d.desired <= cfg.max_replicas, (d, current, demand)
        if now - state.created_at < cfg.look_back_period_s:
            assert d.desired >= current, "scaled down on the history lost in a restart"
        if now < panic_until:
            assert d.desired >= current, "scaled down inside the panic window"
        if current == 0:
            assert (d.desired >= 1) == (demand > 0), "a waiting request gets a replica at once, and only then"
        if d.desired > current:
            assert d.reason in UP
        elif d.desired < current:
            assert d.reason in DOWN
            assert d.desired >= 1 or current == 1, "the last replica goes alone, after its own delay"
        else:
            assert d.reason == "steady"
        if d.reason == "panic":
            panic_until = now + cfg.panic_window_s
        current = d.desired


def needed(demand, cfg):
    return min(cfg.max_replicas, max(cfg.min_replicas, math.ceil(demand / cfg.target_ongoing_requests - 1e-9)))


@SETTINGS
@given(st.data())
def test_constant_demand_settles_on_what_it_needs(data):
    cfg = data.draw(configs(max_delay=10.0))
    current = start_replicas(data.draw, cfg)
    demand = data.draw(st.integers(0, 300))
    state = AutoscalerState(created_at=-math.inf)
    now, trace = 0.0, []
    horizon = (cfg.look_back_period_s + cfg.upscale_delay_s + cfg.panic_window_s
               + (cfg.max_replicas + 1) * (cfg.downscale_delay_s + 0.5) + (cfg.downscale_to_zero_delay_s or 0) + 5)
    while now < horizon:
        state.record(now, float(demand), cfg.look_back_period_s)
        current = decide(cfg, current, state, now).desired
        trace.append(current)
        now += 0.5
    assert current == needed(demand, cfg), (demand, trace[-20:])


@SETTINGS
@given(configs(max_min_replicas=0), st.integers(1, 500))
@example(AutoscalingConfig(min_replicas=0, max_replicas=40, target_ongoing_requests=0.7), 21)  # 21/0.7 > 30 in floats
def test_from_zero_asks_for_no_more_than_the_steady_state(cfg, demand):
    """Leaving zero sizes for the waiting requests as the steady policy would, not one more."""
    state = AutoscalerState(created_at=-math.inf)
    state.record(0.0, float(demand), cfg.look_back_period_s)
    d = decide(cfg, 0, state, 0.0)
    assert d.reason == "from_zero" and d.desired == max(1, needed(demand, cfg))


@SETTINGS
@given(st.data())
def test_idle_deployment_goes_to_zero_only_after_its_delays(data):
    cfg = data.draw(configs(max_delay=10.0, max_min_replicas=0))
    current = data.draw(st.integers(1, cfg.max_replicas))
    state = AutoscalerState(created_at=-math.inf)
    now, first_zero = 0.0, None
    while now < 200 and first_zero is None:
        state.record(now, 0.0, cfg.look_back_period_s)
        current = decide(cfg, current, state, now).desired
        if current == 0:
            first_zero = now
        now += 0.5
    assert first_zero is not None
    to_zero = cfg.downscale_to_zero_delay_s if cfg.downscale_to_zero_delay_s is not None else cfg.downscale_delay_s
    assert first_zero >= to_zero - 1e-9


# -- the router's pure parts -------------------------------------------------------------------------

loads = st.lists(st.integers(0, 10), min_size=0, max_size=8).map(lambda ls: [(f"r{i}", n) for i, n in enumerate(ls)])


@SETTINGS
@given(loads, st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_choose_picks_a_replica_with_room_never_the_unique_busiest(ls, max_ongoing, seed):
    pick = choose(ls, max_ongoing, random.Random(seed))
    room = {rid: n for rid, n in ls if n < max_ongoing}
    if not room:
        assert pick is None
        return
    assert pick in room
    if len(room) >= 2:
        busiest = max(room.values())
        if list(room.values()).count(busiest) == 1:
            assert room[pick] < busiest


DEP = DeploymentID("app", "d")


def info(*ids, max_ongoing=1000, max_queued=-1):
    return {"replicas": [ReplicaAddress(r, "127.0.0.1", 1) for r in ids],
            "max_ongoing": max_ongoing, "max_queued": max_queued, "idempotent": False}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(requests=st.integers(1, 40), max_queued=st.integers(-1, 15), held_max=st.integers(1, 15))
def test_requests_held_at_zero_are_bounded_and_released_to_the_first_replica(monkeypatch, requests, max_queued, held_max):
    """With no replica, a caller holds at most min(max_queued_requests, HELD_AT_ZERO_MAX) requests;
    the rest get 503 (BackPressureError) at once; the held ones go to the first replica."""
    monkeypatch.setattr(router_mod, "HELD_AT_ZERO_MAX", held_max)
    bound = held_max if max_queued < 0 else min(max_queued, held_max)

    async def main():
        r = Router(DEP, no_replica_timeout_s=30)
        r.update(info(max_queued=max_queued))
        starved = []
        r.on_starved = lambda: starved.append(1)
        tasks = [asyncio.ensure_future(r._acquire(set())) for _ in range(requests)]
        for _ in range(3):
            await asyncio.sleep(0)
        refused = [t for t in tasks if t.done()]
        assert r.queued == min(requests, bound) == requests - len(refused)
        for t in refused:
            e = t.exception()
            assert isinstance(e, BackPressureError) and e.limit == (held_max if max_queued < 0 or held_max < max_queued else max_queued)
        if bound > 0:
            assert starved, "a request waiting at zero replicas wakes the controller"
        r.update(info("first"))
        held = [t for t in tasks if not t.done()]
        conns = await asyncio.wait_for(asyncio.gather(*held), 5)
        assert {c.addr.replica_id for c in conns} <= {"first"} and r.queued == 0

    asyncio.run(main())


def test_a_request_refused_at_zero_replicas_still_asks_for_a_replica():
    async def main():
        r = Router(DEP, no_replica_timeout_s=30)
        r.update(info(max_queued=0))
        starved = []
        r.on_starved = lambda: starved.append(1)
        with pytest.raises(BackPressureError):
            await r._acquire(set())
        assert starved and r.demand() == 1  # the controller hears of it, and scales from zero

    asyncio.run(main())
