"""PromQL builders per backend (exact strings) and SLO declaration checks."""

import dataclasses

import pytest

from chaos.slo.queries import (
    BACKENDS,
    SLOError,
    availability_query,
    backend_named,
    check_slos,
    duration,
    error_ratio_query,
    latency_query,
    parse_slos,
    promql_query,
    requests_query,
)
from chaos.slo.spec import Availability, Latency, PromQL, Recovery

pytestmark = pytest.mark.unit

SC = BACKENDS["serve_core"]
RAY = BACKENDS["ray_serve"]
LG = BACKENDS["loadgen"]


def test_durations():
    assert duration(120) == "120s"
    assert duration(120.0) == "120s"
    assert duration(1.5) == "1500ms"
    assert duration(0.25) == "250ms"
    for bad in (0, -1, float("inf"), float("nan"), 0.0001):
        with pytest.raises(SLOError):
            duration(bad)


def test_availability_serve_core():
    assert availability_query(SC, 120) == (
        '(sum(increase(serve_core_http_requests_total{status=~"2.."}[120s])) or vector(0))'
        " / sum(increase(serve_core_http_requests_total[120s]))"
    )
    assert availability_query(SC, 60, route="/api") == (
        '(sum(increase(serve_core_http_requests_total{route="/api",status=~"2.."}[60s])) or vector(0))'
        ' / sum(increase(serve_core_http_requests_total{route="/api"}[60s]))'
    )


def test_availability_ray_serve_leaves_out_its_health_checks():
    assert availability_query(RAY, 120) == (
        '(sum(increase(ray_serve_num_http_requests_total{route!~"/-/.*",status_code=~"2.."}[120s])) or vector(0))'
        ' / sum(increase(ray_serve_num_http_requests_total{route!~"/-/.*"}[120s]))'
    )
    # A named route replaces the exclusion.
    assert availability_query(RAY, 30, route="/api") == (
        '(sum(increase(ray_serve_num_http_requests_total{route="/api",status_code=~"2.."}[30s])) or vector(0))'
        ' / sum(increase(ray_serve_num_http_requests_total{route="/api"}[30s]))'
    )


def test_error_ratio_both_backends():
    assert error_ratio_query(SC, 5) == (
        '(sum(increase(serve_core_http_requests_total{status!~"2.."}[5s])) or vector(0))'
        " / sum(increase(serve_core_http_requests_total[5s]))"
    )
    assert error_ratio_query(RAY, 5, "/a") == (
        '(sum(increase(ray_serve_num_http_requests_total{route="/a",status_code!~"2.."}[5s])) or vector(0))'
        ' / sum(increase(ray_serve_num_http_requests_total{route="/a"}[5s]))'
    )
    assert error_ratio_query(LG, 5) == (
        '(sum(increase(loadgen_requests_total{status!~"2.."}[5s])) or vector(0)) / sum(increase(loadgen_requests_total[5s]))'
    )


def test_latency_converts_to_ms():
    assert latency_query(SC, 99, 120) == (
        "histogram_quantile(0.99, sum by (le) (increase(serve_core_http_request_latency_seconds_bucket[120s]))) * 1000"
    )
    assert latency_query(SC, 99.9, 60, "/api") == (
        'histogram_quantile(0.999, sum by (le) (increase(serve_core_http_request_latency_seconds_bucket{route="/api"}[60s]))) * 1000'
    )
    # Ray Serve's histogram is already in milliseconds.
    assert latency_query(RAY, 50, 120) == (
        'histogram_quantile(0.5, sum by (le) (increase(ray_serve_http_request_latency_ms_bucket{route!~"/-/.*"}[120s])))'
    )
    assert latency_query(LG, 99, 10, "/api") == (
        'histogram_quantile(0.99, sum by (le) (increase(loadgen_request_latency_seconds_bucket{route="/api"}[10s]))) * 1000'
    )


def test_requests_and_quoting():
    assert requests_query(SC, 10, 'a"b\\c') == 'sum(increase(serve_core_http_requests_total{route="a\\"b\\\\c"}[10s]))'


def test_promql_window_substitution_keeps_braces():
    slo = PromQL(name="x", query='sum(rate(foo{a="b"}[{window}])) / sum(rate(bar[{window}]))', op="<", threshold=1)
    assert promql_query(slo, 90) == 'sum(rate(foo{a="b"}[90s])) / sum(rate(bar[90s]))'


def test_bad_latency_declarations():
    no_route = dataclasses.replace(LG, name="no_route", latency_has_route=False)
    with pytest.raises(SLOError, match="no route label"):
        latency_query(no_route, 99, 60, "/api")
    assert latency_query(no_route, 99, 60) == (
        "histogram_quantile(0.99, sum by (le) (increase(loadgen_request_latency_seconds_bucket[60s]))) * 1000"
    )
    with pytest.raises(SLOError, match="between 0 and 100"):
        latency_query(SC, 100, 60)
    with pytest.raises(SLOError, match="drop route='/api'"):
        check_slos([Latency(percentile=99, threshold_ms=10, route="/api")], no_route)
    check_slos([Latency(percentile=99, threshold_ms=10, route="/api")], "loadgen")


def test_unknown_backend_names_the_choices():
    with pytest.raises(SLOError, match=r"unknown backend 'ray'.*\['loadgen', 'ray_serve', 'serve_core'\]"):
        backend_named("ray")
    assert backend_named(RAY) is RAY


def test_duplicate_names_and_placeholders():
    with pytest.raises(SLOError, match="two SLOs are named 'availability'"):
        check_slos([Availability(objective=0.9), Availability(objective=0.99)], "serve_core")
    with pytest.raises(SLOError, match=r"placeholder as \{window\}"):
        check_slos([PromQL(name="p", query="sum(rate(x[{ window }]))", op="<", threshold=1)], "serve_core")
    with pytest.raises(SLOError, match="empty"):
        check_slos([PromQL(name="p", query="  ", op="<", threshold=1)], "serve_core")
    with pytest.raises(SLOError, match="window_s=0.5"):
        check_slos([Recovery(max_s=5, window_s=0.5)], "serve_core")


def test_parse_slos_from_yaml_data():
    slos = parse_slos([
        {"kind": "availability", "objective": 0.999},
        {"kind": "latency", "percentile": 99, "threshold_ms": 50, "route": "/api"},
        {"kind": "recovery", "max_s": 10},
        {"kind": "promql", "name": "q", "query": "up", "op": ">=", "threshold": 1},
    ])
    assert [s.kind for s in slos] == ["availability", "latency", "recovery", "promql"]
    assert isinstance(slos[2], Recovery) and slos[2].window_s == 5 and slos[2].route is None


@pytest.mark.parametrize("data,where", [
    ([{"kind": "availability", "objective": 1.5}], "slos[0][availability][objective]"),
    ([{"kind": "availability", "objective": 0.9}, {"kind": "latency", "percentile": 99}], "slos[1][latency][threshold_ms]"),
    ([{"kind": "uptime", "objective": 0.9}], "slos[0]"),
    ([{"kind": "availability", "objective": 0.9, "objectiv": 1}], "slos[0][availability][objectiv]"),
])
def test_parse_slos_names_the_problem(data, where):
    with pytest.raises(SLOError) as e:
        parse_slos(data)
    assert where in str(e.value) and "Kinds: availability, latency, recovery, promql" in str(e.value)
