"""Schedules: counts equal the integral of the rate, starts sit where the integral passes each
integer, and shards partition the schedule exactly."""

import math

import pytest

from loadgen.errors import ProfileError
from loadgen.profile import Constant, Diurnal, Ramp, Spike, Step, Trace
from loadgen.schedule import build_schedule, check_shard

pytestmark = pytest.mark.unit


def integral(p, t):
    """R(t), written out here by hand (independent of loadgen.schedule)."""
    if isinstance(p, Constant):
        return p.rate * t
    if isinstance(p, Step):
        return p.rate * min(t, p.at_s) + p.to_rate * max(0.0, t - p.at_s)
    if isinstance(p, Spike):
        in_spike = min(max(0.0, t - p.at_s), p.spike_s)
        return p.rate * (t - in_spike) + p.spike_rate * in_spike
    if isinstance(p, Ramp):
        return p.rate * t + (p.to_rate - p.rate) * t * t / (2 * p.duration_s)
    if isinstance(p, Diurnal):
        w = 2 * math.pi / p.period_s
        return p.mean_rate * t + p.amplitude / w * (1 - math.cos(w * t))
    raise AssertionError(p)


PROFILES = [
    Constant(rate=100, duration_s=12),
    Constant(rate=3.5, duration_s=1),  # 3.5 requests intended: k = 0, 1, 2, 3
    Constant(rate=7, duration_s=0.3),
    Step(rate=10, to_rate=50, at_s=2, duration_s=5),
    Step(rate=0, to_rate=20, at_s=1.5, duration_s=4),
    Step(rate=40, to_rate=0, at_s=1, duration_s=3),
    Spike(rate=10, spike_rate=200, at_s=1, spike_s=0.5, duration_s=4),
    Spike(rate=0, spike_rate=30, at_s=2, spike_s=1, duration_s=3),
    Ramp(rate=0, to_rate=100, duration_s=10),
    Ramp(rate=80, to_rate=5, duration_s=7),
    Ramp(rate=10, to_rate=10.000001, duration_s=3),
    Diurnal(mean_rate=50, amplitude=30, period_s=4, duration_s=10),
    Diurnal(mean_rate=20, amplitude=20, period_s=3, duration_s=6),  # touches rate 0
]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.kind}")
def test_count_is_every_integer_below_the_integral(profile):
    total = integral(profile, profile.duration_s)
    schedule = build_schedule(profile)
    assert len(schedule) == math.ceil(round(total, 6))
    assert schedule.duration_s == profile.duration_s


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.kind}")
def test_start_k_is_where_the_integral_reaches_k(profile):
    offsets = build_schedule(profile).offsets
    assert offsets == sorted(offsets)
    assert offsets[0] >= 0 and offsets[-1] < profile.duration_s
    for k, t in enumerate(offsets):
        assert integral(profile, t) == pytest.approx(k, abs=1e-6)


def test_constant_rate_is_evenly_spaced_from_zero():
    offsets = build_schedule(Constant(rate=100, duration_s=12)).offsets
    assert len(offsets) == 1200
    assert offsets[:3] == pytest.approx([0.0, 0.01, 0.02])
    assert offsets[-1] == pytest.approx(11.99)


def test_step_counts_per_side_of_the_step():
    offsets = build_schedule(Step(rate=10, to_rate=50, at_s=2, duration_s=5)).offsets
    assert sum(o < 2 for o in offsets) == 20
    assert sum(o >= 2 for o in offsets) == 150


def test_rate_starting_at_zero_sends_first_request_when_rate_turns_positive():
    offsets = build_schedule(Step(rate=0, to_rate=20, at_s=1.5, duration_s=4)).offsets
    assert offsets[0] == pytest.approx(1.5)
    assert len(offsets) == 50


def test_spike_window_holds_the_spike_rate():
    offsets = build_schedule(Spike(rate=10, spike_rate=200, at_s=1, spike_s=0.5, duration_s=4)).offsets
    assert sum(1 <= o < 1.5 for o in offsets) == 100
    assert len(offsets) == 10 * 3.5 + 100


def test_schedule_is_deterministic():
    p = Diurnal(mean_rate=50, amplitude=30, period_s=4, duration_s=10)
    assert build_schedule(p).offsets == build_schedule(p).offsets


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 7])
def test_shards_partition_the_schedule_exactly(workers):
    schedule = build_schedule(Spike(rate=10, spike_rate=200, at_s=1, spike_s=0.5, duration_s=4))
    shards = [schedule.shard(i, workers) for i in range(workers)]
    merged = sorted(pair for shard in shards for pair in shard)
    assert [seq for seq, _ in merged] == list(range(len(schedule)))
    assert [off for _, off in merged] == schedule.offsets
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    for shard in shards:
        assert [o for _, o in shard] == sorted(o for _, o in shard)


def test_more_workers_than_requests_leaves_some_shards_empty():
    schedule = build_schedule(Constant(rate=3, duration_s=1))
    assert [len(schedule.shard(i, 5)) for i in range(5)] == [1, 1, 1, 0, 0]


@pytest.mark.parametrize("index,count", [(2, 2), (-1, 2), (0, 0)])
def test_bad_shard_is_refused(index, count):
    with pytest.raises(ValueError, match="shard"):
        check_shard(index, count)


def test_profile_that_sends_nothing_is_an_error():
    with pytest.raises(ProfileError, match="sends no requests"):
        build_schedule(Ramp(rate=0, to_rate=0, duration_s=10))


def test_absurd_profile_is_refused_before_allocating():
    with pytest.raises(ProfileError, match="more than"):
        build_schedule(Constant(rate=1e6, duration_s=1e5))


def test_trace_is_shifted_sped_up_and_cut(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("1000.0\n1000.5\n1001.0\n1004.0\n")
    assert build_schedule(Trace(path=str(path))).offsets == [0.0, 0.5, 1.0, 4.0]
    assert build_schedule(Trace(path=str(path), speedup=2)).offsets == [0.0, 0.25, 0.5, 2.0]
    cut = build_schedule(Trace(path=str(path), speedup=2, duration_s=0.5))
    assert cut.offsets == [0.0, 0.25]
    assert cut.duration_s == 0.5
