"""Properties of the SLO math, with hypothesis: verdicts, availability from client records, the
error budget's burn rate, nearest-rank percentiles against a sorted-list reference and against a
Prometheus-style histogram, recovery per fault, and windows with no traffic (not judged)."""

import math
from bisect import bisect_left

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from chaos.slo.crosscheck import (
    ClientRecord,
    ServerFigures,
    bucket_of,
    client_figures,
    compare,
    percentile_nearest_rank,
)
from chaos.slo.evaluate import (
    SLOError,
    Verdict,
    burn_rate_from_ratio,
    grid,
    judge_availability,
    judge_latency,
    judge_recovery,
    recovery_times,
    single_value,
)
from chaos.slo.prometheus import Sample, Series
from chaos.slo.queries import BACKENDS
from chaos.slo.spec import Availability, Latency, Recovery
from loadgen.summary import percentile as loadgen_percentile
from tune.simulation_result import percentile as simulator_percentile

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(SETTINGS, max_examples=80)  # the record lists are slow to generate

objectives = st.floats(0.5, 0.99999, allow_nan=False)
ratios = st.floats(0, 1, allow_nan=False)
statuses = st.sampled_from([200, 201, 204, 400, 404, 408, 429, 500, 502, 503, 504, None])
errors = st.sampled_from([None, "timeout", "refused", "reset", "missed", "cancelled"])


@st.composite
def records(draw, start=100.0, end=160.0, max_size=30):
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        status = draw(statuses)
        out.append(ClientRecord(
            intended=draw(st.floats(start - 10, end + 10, allow_nan=False)), route=draw(st.sampled_from(["/a", "/b"])),
            status=status, error=None if status is not None else draw(errors),
            latency_s=draw(st.none() | st.floats(0, 100, allow_nan=False)),
        ))
    return out


# -- verdicts --------------------------------------------------------------------------------------

@SETTINGS
@given(objectives, ratios, ratios)
def test_availability_verdict_is_a_threshold_and_monotone(objective, a, b):
    slo = Availability(objective=objective)
    lo, hi = sorted((a, b))
    r_lo, r_hi = judge_availability(slo, lo, "q", "60s"), judge_availability(slo, hi, "q", "60s")
    assert r_lo.ok is (lo >= objective) and r_hi.ok is (hi >= objective)
    assert not (r_lo.ok and not r_hi.ok), "more availability never turns met into violated"
    none = judge_availability(slo, None, "q", "60s")
    assert none.verdict is Verdict.NO_DATA and none.ok is None and none.value is None


@SETTINGS
@given(st.floats(0.1, 99.9), st.floats(0.001, 1e5), st.none() | st.floats(0, 1e6, allow_nan=False))
def test_latency_verdict(percentile, threshold, value):
    r = judge_latency(Latency(percentile=percentile, threshold_ms=threshold), value, "q", "60s")
    assert r.ok is (None if value is None else value <= threshold)


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=1))
def test_no_number_is_no_data(values):
    """0/0 (no request in the window) is NaN in Prometheus: not judged, not a zero."""
    v = single_value([Sample({}, x) for x in values])
    if not values or math.isnan(values[0]):
        assert v is None
    else:
        assert v == values[0]


# -- availability from the client's records --------------------------------------------------------

@FEWER
@given(records())
def test_client_availability_is_a_share_and_absent_without_traffic(recs):
    f = client_figures(recs, 100.0, 160.0)
    judged = [r for r in recs if 100.0 <= r.intended < 160.0 and not (r.status is None and r.error in ("missed", "cancelled"))]
    assert f.total == len(judged) and f.good == sum(r.good for r in judged)
    if not judged:
        assert f.availability is None, "a window without a sent request is not judged"
        assert compare(f, ServerFigures(None, None, None), BACKENDS["serve_core"].bucket_bounds_ms).ok is None
    else:
        assert 0.0 <= f.availability <= 1.0
        assert f.availability == f.good / f.total
    assert f.unanswered == f.total - f.answered >= 0
    assert sum(f.failures.values()) == f.total - f.good


@FEWER
@given(records(), st.data())
def test_availability_is_monotone_in_errors(recs, data):
    """Turning one good answer into a failure never raises availability."""
    good = [i for i, r in enumerate(recs) if r.good]
    if not good:
        return
    i = data.draw(st.sampled_from(good))
    worse = list(recs)
    worse[i] = ClientRecord(recs[i].intended, recs[i].route, data.draw(st.sampled_from([500, 503, None])), "timeout",
                            recs[i].latency_s)
    a, b = client_figures(recs, 100.0, 160.0).availability, client_figures(worse, 100.0, 160.0).availability
    assert (a is None) == (b is None)
    if a is not None:
        assert b <= a


# -- the error budget -------------------------------------------------------------------------------

@SETTINGS
@given(objectives, ratios, ratios)
def test_burn_rate_is_monotone_and_one_at_the_budget(objective, a, b):
    lo, hi = sorted((a, b))
    assert 0 <= burn_rate_from_ratio(lo, objective) <= burn_rate_from_ratio(hi, objective)
    assert burn_rate_from_ratio(1 - objective, objective) == pytest.approx(1.0)
    assert burn_rate_from_ratio(None, objective) is None


@given(st.one_of(st.floats(max_value=0), st.floats(min_value=1), st.just(math.nan)))
def test_burn_rate_refuses_an_objective_outside_0_1(objective):
    with pytest.raises(SLOError, match="between 0 and 1"):
        burn_rate_from_ratio(0.1, objective)


# -- percentiles -------------------------------------------------------------------------------------

latencies = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300)
percentiles = st.sampled_from([50, 90, 95, 99, 99.9, 99.99]) | st.floats(0.01, 100)


@SETTINGS
@given(latencies, percentiles)
@example([float(i) for i in range(1, 1001)], 99.9)  # 99.9 / 100 * 1000 is 999.0000000000001 in floats
def test_nearest_rank_is_the_sorted_list_definition_everywhere(values, p):
    """The smallest observed value with at least p% of values at or below it; crosscheck,
    loadgen and the simulator agree on it."""
    v = percentile_nearest_rank(values, p)
    ordered = sorted(values)
    n = len(ordered)
    need = p / 100 * n
    assert sum(x <= v for x in ordered) >= need - 1e-9 * n
    assert sum(x < v for x in ordered) < need + 1e-9 * n
    assert loadgen_percentile(ordered, p) == v
    assert simulator_percentile(ordered, p) == v


def histogram_quantile(q, observations, bounds):
    """Prometheus' histogram_quantile over cumulative ``le`` buckets (promql/quantile.go):
    the rank's bucket, linear interpolation inside it, the last finite bound for +Inf."""
    counts = [0] * (len(bounds) + 1)
    for x in observations:
        counts[bisect_left(bounds, x)] += 1
    cumulative, total = [], 0
    for c in counts:
        total += c
        cumulative.append(total)
    rank = q * total
    b = next(i for i, c in enumerate(cumulative) if c >= rank)
    if b == len(bounds):
        return bounds[-1]
    start = 0.0 if b == 0 else bounds[b - 1]
    below = 0 if b == 0 else cumulative[b - 1]
    return start + (bounds[b] - start) * (rank - below) / (cumulative[b] - below)


bucket_values = st.sampled_from(sorted(BACKENDS["serve_core"].bucket_bounds_ms)) | st.floats(0, 100_000, allow_nan=False)


@SETTINGS
@given(st.lists(bucket_values, min_size=1, max_size=400), st.sampled_from([50.0, 90.0, 99.0, 99.9]),
       st.sampled_from(["serve_core", "ray_serve"]))
def test_histogram_percentile_agrees_with_the_sorted_list_within_a_bucket(values, p, backend):
    """What Prometheus interpolates from the histogram and what the client computes from its
    sorted list land in the same bucket; past the last bound (where Prometheus answers the last
    bound) in the next one, which compare()'s one-bucket tolerance allows."""
    bounds = BACKENDS[backend].bucket_bounds_ms
    server = histogram_quantile(float(f"{p / 100:.10g}"), values, bounds)  # the quantile as latency_query writes it
    client = percentile_nearest_rank(values, p)
    distance = abs(bucket_of(client, bounds)[0] - bucket_of(server, bounds)[0])
    assert distance == (0 if client <= bounds[-1] else 1), (client, server)
    lo, hi = bucket_of(client, bounds)[1]
    assert lo < client <= hi or (client == 0 and lo == 0)


# -- recovery ------------------------------------------------------------------------------------------

# error ratios around a healthy limit of 0.01: healthy, unhealthy, and no request counted (None)
points_lists = st.lists(st.sampled_from([0.0, 0.005, 0.01, 0.02, 0.5, 1.0, None]) | st.floats(0, 1), min_size=1,
                        max_size=40)


def pts(values, start=100):
    return [(float(start + i), v) for i, v in enumerate(values)]


@SETTINGS
@given(points_lists, st.lists(st.integers(0, 45), min_size=1, max_size=4), st.floats(0, 0.5, allow_nan=False))
def test_recovery_times_are_ordered_and_judged(values, offsets, healthy):
    points = pts(values)
    faults = [100.0 + o for o in offsets]
    slo = Recovery(max_s=5, healthy_error_ratio=healthy)
    recs = recovery_times(points, faults, healthy, stable_s=slo.window_s)  # as judge_recovery measures them
    assert [r.fault_at for r in recs] == sorted(faults)
    for r in recs:
        if r.impact_at is None:
            assert r.recovery_s == 0.0
            continue
        assert r.impact_at >= r.fault_at
        if r.recovered_at is None:
            assert r.recovery_s is None
        else:
            assert r.recovered_at > r.impact_at and r.recovery_s == r.recovered_at - r.fault_at
    verdict = judge_recovery(slo, points, faults, "q")
    if all(v is None for v in values):
        assert verdict.verdict is Verdict.NO_DATA, "no request counted after the fault: not judged"
    elif verdict.verdict is Verdict.NO_DATA:  # a fault not seen to recover, too near the window's end to judge
        assert any(r.recovery_s is None for r in recs)
    elif any(r.recovery_s is None for r in recs):  # not recovered by the end: violated, value a lower bound
        assert verdict.verdict is Verdict.VIOLATED and verdict.value >= 0
    else:
        assert verdict.value == max(r.recovery_s for r in recs) and verdict.ok is (verdict.value <= 5)


@SETTINGS
@given(points_lists, st.integers(0, 39), st.integers(0, 39), st.sampled_from([0.0, 3.0, 5.0]))
@example([0.0, 0.0, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.0], 0, 4, 3.0)  # a blip at 102, down 104..107
def test_more_errors_after_the_impact_never_make_recovery_look_faster(values, fault_offset, i, stable_s):
    """An error at or after a fault's impact can only end its outage later. (One before the impact
    moves the impact earlier: the outage measured is then another, earlier one.)"""
    points = pts(values)
    fault = 100.0 + fault_offset
    before = recovery_times(points, [fault], 0.01, stable_s)[0]
    i = i % len(values)
    assume(before.impact_at is not None and points[i][0] >= before.impact_at)
    worse = list(points)
    worse[i] = (worse[i][0], 1.0)
    after = recovery_times(worse, [fault], 0.01, stable_s)[0].recovery_s
    inf = math.inf
    assert (inf if after is None else after) >= (inf if before.recovery_s is None else before.recovery_s)


def test_a_moment_of_health_inside_an_outage_is_not_its_recovery():
    points = pts([0.0, 0.0, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # 100..113
    assert recovery_times(points, [100.0], 0.01)[0].recovered_at == 103  # without a stable window: the blip
    assert recovery_times(points, [100.0], 0.01, stable_s=3)[0].recovered_at == 108


@FEWER
@given(st.floats(0, 1e6, allow_nan=False), st.floats(0.1, 100, allow_nan=False), st.integers(0, 200),
       st.dictionaries(st.integers(0, 200), st.floats(0, 1) | st.just(math.nan)))
def test_grid_has_one_point_per_step_and_none_for_gaps(start, step, steps, present):
    end = start + steps * step
    series = [Series({}, tuple((start + k * step, v) for k, v in sorted(present.items()) if k <= steps))]
    out = grid(series, start, end, step)
    assert len(out) == steps + 1
    assert all(b[0] > a[0] for a, b in zip(out, out[1:], strict=False))
    values = dict(series[0].points)
    for k, (_, v) in enumerate(out):
        expected = values.get(start + k * step)
        assert v == (None if expected is None or math.isnan(expected) else expected)
