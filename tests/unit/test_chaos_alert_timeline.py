"""Which alerts would have fired: recording rules inlined into the alert conditions, and firing
intervals with ``for:`` worked out as Prometheus' rule manager does. Against a real Prometheus:
tests/integration/test_slo_prometheus.py."""

import pytest

from chaos.slo.alert_timeline import (
    AlertExpansionError,
    Firing,
    alert_conditions,
    evaluation_times,
    expand,
    firing_intervals,
    parse_duration,
    timeline,
)
from chaos.slo.alerts import BurnWindow, alert_rules
from chaos.slo.spec import Availability, Latency, PromQL

pytestmark = pytest.mark.unit

RATIO_6S = '(sum(increase(x_total{status!~"2.."}[6s])) or vector(0)) / sum(increase(x_total[6s]))'
RECORDS = [
    {"record": "slo:error_ratio:6s", "expr": RATIO_6S, "labels": {"slo": "a", "backend": "b"}},
    {"record": "slo:error_ratio:6s", "expr": "vector(0.5)", "labels": {"slo": "other", "backend": "b"}},
    {"record": "slo:twice", "expr": "2 * slo:error_ratio:6s{slo=\"a\"}", "labels": {}},
]


def test_a_recorded_selector_becomes_its_expression_with_its_labels_put_back():
    got = expand('slo:error_ratio:6s{slo="a",backend="b"} > 0.0144', RECORDS)
    assert got == (f'label_replace(label_replace(({RATIO_6S}), "slo", "a", "", ""), "backend", "b", "", "") > 0.0144')


def test_matchers_pick_the_rules_and_several_are_joined_with_or():
    one = expand('slo:error_ratio:6s{slo!="a"}', RECORDS)
    assert one == 'label_replace(label_replace((vector(0.5)), "slo", "other", "", ""), "backend", "b", "", "")'
    both = expand('max(slo:error_ratio:6s{backend=~"b|c"})', RECORDS)
    assert both.startswith("max((label_replace(label_replace((" + RATIO_6S) and " or label_replace(" in both
    assert expand("slo:error_ratio:6s", RECORDS) == both[4:-1]  # no matchers: every rule of that name


def test_records_of_records_strings_and_other_metrics_are_handled():
    assert expand("slo:twice", RECORDS) == (
        '(2 * label_replace(label_replace((' + RATIO_6S + '), "slo", "a", "", ""), "backend", "b", "", ""))')
    untouched = 'sum(rate(slo_error_ratio_6s{route="slo:error_ratio:6s"}[1m])) > 1 and on() x:slo:error_ratio:6s'
    assert expand(untouched, RECORDS) == untouched


@pytest.mark.parametrize("expr,message", [
    ('slo:error_ratio:6s{slo="nope"}', "no recording rule slo:error_ratio:6s matches"),
    ('slo:error_ratio:6s{route="/"}', "the matcher on 'route' needs the labels the expression produces"),
    ("slo:error_ratio:6s[1m]", "a range, offset or @ on a recorded series"),
    ("slo:error_ratio:6s offset 1m", "a range, offset or @ on a recorded series"),
])
def test_what_cannot_be_inlined_says_why(expr, message):
    with pytest.raises(AlertExpansionError, match=message):
        expand(expr, RECORDS)


def test_a_loop_of_recording_rules_is_an_error():
    loop = [{"record": "a:x", "expr": "b:x + 1"}, {"record": "b:x", "expr": "a:x + 1"}]
    with pytest.raises(AlertExpansionError, match="loop"):
        expand("a:x", loop)


def test_durations():
    assert [parse_duration(d) for d in ("30s", "1500ms", "1m30s", "2h", 0, "0s", 4.5)] == [30, 1.5, 90, 7200, 0, 0, 4.5]
    with pytest.raises(AlertExpansionError, match="not a Prometheus duration"):
        parse_duration("5 minutes")


def test_conditions_of_the_generated_rules():
    windows = (BurnWindow("fast", 300, 60, 14.4, "page", for_s=20), BurnWindow("slow", 1800, 300, 6.0, "ticket"))
    slos = [Availability(objective=0.999), Latency(name="p99", percentile=99, threshold_ms=200),
            PromQL(name="q", query="sum(rate(y[{window}]))", op=">=", threshold=1)]
    fast, slow, lat, q = alert_conditions(alert_rules(slos, "serve_core", windows=windows, scale=0.1))
    assert fast.key == 'SLOErrorBudgetBurn{slo="availability",backend="serve_core",window="fast",severity="page"}'
    assert (fast.alert, fast.for_s, fast.step_s, slow.for_s) == ("SLOErrorBudgetBurn", 2.0, 1.5, 0.0)
    assert fast.labels == {"slo": "availability", "backend": "serve_core", "window": "fast", "severity": "page"}
    assert all("slo:" not in c.query for c in (fast, slow, lat, q))
    assert fast.query.count("[30s]") == 2 and fast.query.count("[6s]") == 2 and fast.query.count("> 0.0144") == 2
    assert lat.query.startswith('label_replace(label_replace(label_replace((histogram_quantile(0.99, sum by (le) '
                                '(increase(serve_core_http_request_latency_seconds_bucket[6s]))) * 1000), "slo", "p99"')
    assert q.query == q.expr == "(sum(rate(y[6s]))) < 1"
    no_interval = alert_conditions({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}] * 2}]})
    assert [(c.key, c.step_s) for c in no_interval] == [("A{}", 60.0), ("A{}#2", 60.0)]


# -- firing intervals -------------------------------------------------------------------------


def held_at(times, *spans):
    return [any(a <= t <= b for a, b in spans) for t in times]


def test_without_for_an_alert_fires_on_the_first_evaluation_and_resolves_on_the_first_without_it():
    times = evaluation_times(0, 20, 1)
    assert times == [float(k) for k in range(21)]
    assert firing_intervals(times, held_at(times, (5, 8), (12, 12)), 0) == [(5, 5, 9), (12, 12, 13)]


def test_for_needs_the_condition_held_that_long_without_a_break():
    times = evaluation_times(0, 30, 1)
    # 5..7 is too short for 3 s; 10..16 fires at 13; 20..30 is still firing at the end
    assert firing_intervals(times, held_at(times, (5, 7), (10, 16), (20, 30)), 3) == [(10, 13, 17), (20, 23, None)]
    # a one-evaluation break starts the wait again
    assert firing_intervals(times, held_at(times, (0, 2), (4, 6)), 3) == []
    with pytest.raises(ValueError):
        firing_intervals(times, [True], 0)


def test_timeline_per_series_with_labels_and_errors():
    rules = alert_rules([Availability(name="a", objective=0.99), Availability(name="b", objective=0.9)], "ray_serve",
                        scale=0.1, interval_s=2)
    conds = alert_conditions(rules)
    fast_a = next(c for c in conds if c.labels["slo"] == "a" and c.labels["window"] == "fast")
    slow_b = next(c for c in conds if c.labels["slo"] == "b" and c.labels["window"] == "slow")
    start = 1000.0
    results = {c.key: {"query": c.query, "error": None, "series": []} for c in conds}
    results[fast_a.key]["series"] = [
        {"labels": {"slo": "a", "backend": "ray_serve", "extra": "1"}, "points": [[1010.0, 0.5], [1012.001, 0.5]]},
        {"labels": {"__name__": "x"}, "points": [[1030.0, 0.5], [1032.0, None]]},  # a null is not a result
    ]
    results[slow_b.key] = {"query": slow_b.query, "error": "PrometheusQueryError: bad", "series": []}
    del results[conds[1].key]
    tl = timeline(conds, results, start, start + 40)
    assert tl.firings == [
        Firing("SLOErrorBudgetBurn", {"slo": "a", "backend": "ray_serve", "extra": "1", "window": "fast",
                                      "severity": "page"}, 1010.0, 1010.0, 1014.0),
        Firing("SLOErrorBudgetBurn", {"slo": "a", "backend": "ray_serve", "window": "fast", "severity": "page"},
               1030.0, 1030.0, 1032.0),
    ]
    assert tl.firings[0].severity == "page"
    assert tl.errors == {slow_b.key: "PrometheusQueryError: bad", conds[1].key: "not queried"}
