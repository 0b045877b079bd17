"""Verdicts, recovery, burn rate and the evaluate wiring, on fake Prometheus answers."""

import dataclasses
import json
import math

import pytest

from chaos.slo.evaluate import (
    FaultRecovery,
    SLOError,
    Verdict,
    burn_rate,
    burn_rate_from_ratio,
    evaluate,
    grid,
    judge_availability,
    judge_latency,
    judge_promql,
    judge_recovery,
    recovery_times,
    single_value,
)
from chaos.slo.prometheus import PrometheusQueryError, Sample, Series
from chaos.slo.queries import BACKENDS
from chaos.slo.spec import SLO, Availability, Latency, PromQL, Recovery

pytestmark = pytest.mark.unit


class FakeProm:
    """Answers by query text; records what was asked."""

    url = "http://fake:9090"

    def __init__(self, instant=None, ranges=None, reject=()):
        self.instant = instant or {}
        self.ranges = ranges or {}
        self.reject = reject
        self.asked = []

    def query(self, q, at=None):
        self.asked.append(("query", q, at))
        if any(r in q for r in self.reject):
            raise PrometheusQueryError("rejected the query (bad_data: parse error)", url=self.url, query=q, fix="correct it")
        for key, value in self.instant.items():
            if key in q:
                return value
        return []

    def query_range(self, q, start, end, step):
        self.asked.append(("range", q, (start, end, step)))
        for key, value in self.ranges.items():
            if key in q:
                return value
        return []


# --- single numbers -------------------------------------------------------------------------

def test_single_value():
    assert single_value([]) is None
    assert single_value([Sample({}, math.nan)]) is None
    assert single_value([Sample({}, 0.5)]) == 0.5
    with pytest.raises(ValueError, match="returned 2 series.*aggregate"):
        single_value([Sample({"a": "1"}, 1), Sample({"a": "2"}, 2)])


def test_judges():
    a = Availability(objective=0.999)
    assert judge_availability(a, 0.999, "q", "60s").verdict is Verdict.MET
    r = judge_availability(a, 0.998, "q", "60s")
    assert r.verdict is Verdict.VIOLATED and r.ok is False and r.threshold == 0.999 and r.op == ">="
    n = judge_availability(a, None, "q", "60s")
    assert n.verdict is Verdict.NO_DATA and n.ok is None and "no requests counted" in n.detail

    lat = Latency(percentile=99, threshold_ms=100, route="/x")
    assert judge_latency(lat, 100.0, "q", "60s").ok is True
    v = judge_latency(lat, 100.5, "q", "60s")
    assert v.ok is False and "p99 100.500 ms > 100" in v.detail and "route /x" in v.detail
    assert judge_latency(lat, None, "q", "60s").verdict is Verdict.NO_DATA

    for op, value, ok in [("<", 1, False), ("<=", 1, True), (">", 2, True), (">=", 0.5, False), ("==", 1, True)]:
        p = PromQL(name="p", query="x", op=op, threshold=1)
        assert judge_promql(p, value, "x", "60s").ok is ok, op
    assert judge_promql(PromQL(name="p", query="x", op="<", threshold=1), None, "x", "60s").verdict is Verdict.NO_DATA


# --- recovery -------------------------------------------------------------------------------

def pts(values, start=100):
    return [(float(start + i), v) for i, v in enumerate(values)]


def test_recovery_from_a_range_result():
    # t=100..: healthy, then 3 s bad, then healthy again
    points = pts([0.0, 0.0, 0.5, 1.0, 0.02, 0.005, 0.0])
    assert recovery_times(points, [100], 0.01) == [FaultRecovery(100, 102, 105, 5)]
    # a looser threshold counts 0.02 as healthy
    assert recovery_times(points, [100], 0.05) == [FaultRecovery(100, 102, 104, 4)]


def test_no_data_counts_as_unhealthy():
    # a dead proxy counts nothing: that is not health
    points = pts([0.0, None, None, 0.0])
    assert recovery_times(points, [100], 0.01) == [FaultRecovery(100, 101, 103, 3)]
    points = pts([0.0, math.nan, 0.0])
    assert recovery_times(points, [100], 0.01)[0].recovery_s == 2


def test_no_impact_and_never_recovered():
    assert recovery_times(pts([0.0] * 5), [101], 0.01) == [FaultRecovery(101, None, 101, 0.0)]
    assert recovery_times(pts([0.0, 0.5, 0.5]), [100], 0.01) == [FaultRecovery(100, 101, None, None)]


def test_impact_is_looked_for_before_the_next_fault_only():
    # fault 1 at 100 has no impact before fault 2 at 103; fault 2's errors belong to fault 2
    points = pts([0.0, 0.0, 0.0, 0.0, 0.9, 0.9, 0.0])
    assert recovery_times(points, [103, 100], 0.01) == [FaultRecovery(100, None, 100, 0.0), FaultRecovery(103, 104, 106, 3)]


def test_judge_recovery():
    slo = Recovery(max_s=4)
    r = judge_recovery(slo, pts([0.0, 0.9, 0.9, 0.0, 0.9, 0.0]), [100, 103.5], "q")
    assert r.value == 3 and r.ok is True and "recovered in 3 s" in r.detail
    assert "fault at 103.5: unhealthy from +0.5 s, recovered in 1.5 s" in r.detail
    late = judge_recovery(Recovery(max_s=2), pts([0.0, 0.9, 0.9, 0.0]), [100], "q")
    assert late.value == 3 and late.ok is False
    never = judge_recovery(slo, pts([0.0] + [0.9] * 6), [100], "q")
    assert never.verdict is Verdict.VIOLATED and never.value == 6 and "not recovered by 106" in never.detail
    too_soon = judge_recovery(slo, pts([0.0, 0.9, 0.9]), [100], "q")  # the window ended 2 s after the kill
    assert too_soon.verdict is Verdict.NO_DATA and "recovery not judged" in too_soon.detail
    assert judge_recovery(slo, pts([None, None]), [100], "q").verdict is Verdict.NO_DATA
    assert judge_recovery(slo, pts([0.0]), [], "q").verdict is Verdict.NO_DATA


def test_recovery_is_not_judged_when_the_window_ends_before_a_whole_ratio_window_after_the_fault():
    """Issue 16: a partition healed 3 s before the load ended; the 5 s error ratio still covered
    it at the end, so "not recovered" was a guess, and it failed a run whose client saw no error."""
    slo = Recovery(max_s=30, window_s=5)
    points = pts([0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])  # 100..111, bad from 102
    cut = judge_recovery(slo, points, [100], "q", fault_ends=[108.0])  # healed at 108, window ends at 111
    assert cut.verdict is Verdict.NO_DATA and cut.ok is None
    assert "recovery not judged: the window ended 3 s after the fault stopped acting" in cut.detail
    assert "lengthen after_s" in cut.detail
    # Five seconds or more after the heal, still bad: that is not recovered.
    assert judge_recovery(slo, points, [100], "q", fault_ends=[106.0]).verdict is Verdict.VIOLATED
    # Without the fault's end, as before: the fault's own time counts.
    assert judge_recovery(slo, points, [100], "q").verdict is Verdict.VIOLATED
    # A judged fault that took too long still fails the run beside one that cannot be judged.
    two = pts([0.0, 0.9, 0.9, 0.9, 0.9, 0.0, 0.0, 0.9, 0.9])  # 100..108
    mixed = judge_recovery(Recovery(max_s=2, window_s=5), two, [100, 106], "q", fault_ends=[100.0, 107.0])
    assert mixed.verdict is Verdict.VIOLATED and mixed.value == 5


def test_grid_fills_gaps():
    s = [Series({}, ((10.0, 0.0), (12.0, 0.5), (13.0, math.nan)))]
    assert grid(s, 10, 14, 1) == [(10, 0.0), (11, None), (12, 0.5), (13, None), (14, None)]
    assert grid([], 10, 11, 1) == [(10, None), (11, None)]
    with pytest.raises(ValueError, match="one series"):
        grid([Series({}, ()), Series({}, ())], 0, 1, 1)


# --- burn rate ------------------------------------------------------------------------------

def test_burn_rate_math():
    assert burn_rate_from_ratio(0.001, 0.999) == pytest.approx(1.0)
    assert burn_rate_from_ratio(0.0144, 0.999) == pytest.approx(14.4)
    assert burn_rate_from_ratio(1.0, 0.99) == pytest.approx(100)
    assert burn_rate_from_ratio(0.0, 0.99) == 0.0
    assert burn_rate_from_ratio(None, 0.99) is None
    for bad in (0, 1, 1.5):
        with pytest.raises(SLOError, match="objective"):
            burn_rate_from_ratio(0.1, bad)


def test_burn_rate_queries_at_the_given_time():
    prom = FakeProm(instant={"status_code!~": [Sample({}, 0.05)]})
    assert burn_rate(prom, "ray_serve", 0.99, at=1000.0, window_s=30, route="/a") == pytest.approx(5.0)
    kind, q, at = prom.asked[0]
    assert at == 1000.0 and '[30s]' in q and 'route="/a"' in q and q.startswith("(sum(increase(ray_serve_num_http_requests_total")
    with pytest.raises(SLOError):
        burn_rate(prom, "ray_serve", 1.0, at=1000.0, window_s=30)
    assert len(prom.asked) == 1  # a bad objective asks nothing
    assert burn_rate(FakeProm(), "serve_core", 0.99, 0, 30) is None


# --- evaluate -------------------------------------------------------------------------------

def test_evaluate_wiring():
    prom = FakeProm(
        instant={
            'status=~"2.."': [Sample({}, 0.9995)],
            "histogram_quantile(0.99,": [Sample({}, 42.0)],
            "my_gauge": [Sample({}, 3.0)],
        },
        ranges={'status!~"2.."': [Series({}, tuple((1000.0 + i, v) for i, v in enumerate([0.0, 0.5, 0.5, 0.0, 0.0])))]},
    )
    slos: list[SLO] = [
        Availability(objective=0.999),
        Latency(percentile=99, threshold_ms=40),
        Recovery(max_s=5),
        PromQL(name="g", query="max_over_time(my_gauge[{window}])", op="<=", threshold=3),
    ]
    res = evaluate(slos, prom, "serve_core", start=940.0, end=1004.0, fault_times=[1000.0, 2000.0])
    assert [(r.name, r.verdict) for r in res] == [
        ("availability", Verdict.MET), ("latency", Verdict.VIOLATED), ("recovery", Verdict.MET), ("g", Verdict.MET),
    ]
    assert res[2].value == 3 and res[2].unit == "s"
    # The journal stores results through dataclasses.asdict: ok and the verdict must survive it.
    plain = json.loads(json.dumps(dataclasses.asdict(res[1])))
    assert plain["ok"] is False and plain["verdict"] == "violated" and plain["value"] == 42.0
    assert res[3].query == "max_over_time(my_gauge[64s])"
    # instant queries at the end of the window; recovery from the first fault inside the window to the end
    assert [a[2] for a in prom.asked if a[0] == "query"] == [1004.0, 1004.0, 1004.0]
    assert [a[2] for a in prom.asked if a[0] == "range"] == [(1000.0, 1004.0, 1.0)]
    assert "[64s]" in res[0].query and "[5s]" in res[2].query


def test_evaluate_rejected_query_is_an_error_verdict_not_an_exception():
    prom = FakeProm(instant={'status=~"2.."': [Sample({}, 1.0)]}, reject=("broken",))
    res = evaluate([Availability(objective=0.9), PromQL(name="b", query="broken(", op="<", threshold=1)],
                   prom, "serve_core", 0, 60)
    assert res[0].verdict is Verdict.MET
    assert res[1].verdict is Verdict.ERROR and res[1].ok is None and "rejected the query" in res[1].detail


def test_evaluate_rejects_bad_declarations_before_querying():
    prom = FakeProm()
    with pytest.raises(SLOError, match="end > start"):
        evaluate([Availability(objective=0.9)], prom, "serve_core", 10, 10)
    no_route = dataclasses.replace(BACKENDS["loadgen"], latency_has_route=False)
    with pytest.raises(SLOError, match="no route label"):
        evaluate([Latency(percentile=99, threshold_ms=1, route="/a")], prom, no_route, 0, 10)
    assert prom.asked == []


def test_faults_outside_the_window_are_said_so():
    res = evaluate([Recovery(max_s=5)], FakeProm(), "serve_core", 0, 60, fault_times=[100])
    assert res[0].verdict is Verdict.NO_DATA and "outside the window" in res[0].detail
