"""The report's time series: the PromQL per plot, reading them (with a fake Prometheus), and the
client records binned per second."""

import math

import pytest

from chaos.slo.crosscheck import ClientRecord
from chaos.slo.prometheus import PrometheusQueryError, PrometheusUnavailable, Series
from chaos.slo.timeseries import Collector, bin_records, collect, entry, entry_series, plot_queries, range_step

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


def rec(off, status=200, latency=0.01, error=None):
    return ClientRecord(T0 + off, "/", status, error, latency)


def test_per_second_bins_by_intended_start():
    records = [rec(0.1, latency=0.010), rec(0.5, latency=0.030), rec(0.9, 503, 0.002),  # second 0
               rec(2.2, None, 5.0, "timeout"), rec(2.3, None, None, "missed"), rec(2.4, None, None, "cancelled"),
               rec(3.999, None, 0.001, "refused"),
               rec(-0.1), rec(4.0)]  # outside [t0, t0 + 4)
    b = bin_records(records, T0, T0 + 4)
    assert b.t == [0.5, 1.5, 2.5, 3.5]
    assert b.sent_per_s == [3, 0, 1, 1]  # missed and cancelled were never sent
    assert b.errors_per_s == [1, 0, 1, 1]
    assert b.latency_ms[50] == pytest.approx([10.0, None, 5000.0, 1.0])  # nearest rank, every sent request
    assert b.latency_ms[99] == pytest.approx([30.0, None, 5000.0, 1.0])
    assert b.latency_ms[90][1] is None


def test_wider_bins_are_rates_per_second():
    b = bin_records([rec(k * 0.1) for k in range(50)], T0, T0 + 5, width_s=2.5, percentiles=(50,))
    assert b.t == [1.25, 3.75] and b.sent_per_s == [10.0, 10.0] and list(b.latency_ms) == [50]
    assert bin_records([], T0, T0).t == []
    with pytest.raises(ValueError):
        bin_records([], T0, T0 + 1, width_s=0)


def test_plot_queries_per_backend():
    sc = plot_queries("serve_core")
    assert list(sc) == ["requests", "errors", "p50", "p90", "p99", "replicas"]
    assert sc["requests"] == "sum(increase(serve_core_http_requests_total[5s])) / 5"
    assert sc["errors"] == '(sum(increase(serve_core_http_requests_total{status!~"2.."}[5s])) or vector(0)) / 5'
    assert sc["p90"] == ("histogram_quantile(0.9, sum by (le) (increase(serve_core_http_request_latency_seconds_bucket"
                         "[5s]))) * 1000")
    assert sc["replicas"] == 'sum by (application, deployment) (serve_core_deployment_replicas{state="RUNNING"})'
    ray = plot_queries("ray_serve", window_s=20, route="/api")
    assert ray["replicas"] == "sum by (application, deployment) (ray_serve_deployment_replica_healthy)"
    assert ray["requests"] == 'sum(increase(ray_serve_num_http_requests_total{route="/api"}[20s])) / 20'
    assert "replicas" not in plot_queries("loadgen")


class FakeProm:
    url = "http://p:9090"

    def __init__(self, fail=lambda q: None):
        self.fail, self.calls = fail, []

    def query(self, q, at=None):
        raise AssertionError("range queries only")

    def query_range(self, q, start, end, step):
        self.calls.append((q, step))
        error = self.fail(q)
        if error:
            raise error
        return [Series({"q": q}, ((start, 1.0), (start + step, math.nan), (start + 2 * step, math.inf)))]


def test_collect_keeps_what_failed_and_why_and_stops_once_prometheus_is_down():
    down = PrometheusUnavailable("not reachable", url="http://p:9090", query="c", fix="start it")
    bad = PrometheusQueryError("rejected", url="http://p:9090", query="b", fix="fix it")
    prom = FakeProm(lambda q: {"b": bad, "c": down}.get(q))
    got = collect(prom, {"A": "a", "B": "b", "C": "c", "D": "d"}, T0, T0 + 10, 1.0)
    assert got["A"] == {"query": "a", "error": None, "series": [
        {"labels": {"q": "a"}, "points": [[T0, 1.0], [T0 + 1, None], [T0 + 2, None]]}]}  # NaN, +Inf: gaps
    assert got["B"]["error"].startswith("PrometheusQueryError: Prometheus at http://p:9090: rejected")
    assert got["C"]["error"].startswith("PrometheusUnavailable: ")
    assert got["D"] == {"query": "d", "error": "not queried: " + got["C"]["error"], "series": []}
    assert [q for q, _ in prom.calls] == ["a", "b", "c"]
    # the same collector remembers across calls: the alert conditions are not sent either
    c = Collector(prom, T0, T0 + 10)
    c.collect({"C": "c"}, 1.0)
    assert c.collect({"E": "e"}, 1.5)["E"]["error"].startswith("not queried: PrometheusUnavailable")


def test_long_runs_get_a_coarser_step_and_entries_read_back():
    assert range_step(0, 100, 1.0) == 1.0 and range_step(0, 50_000, 1.0) == 5.0
    prom = FakeProm()
    collect(prom, {"A": "a"}, 0, 50_000, 1.0)
    assert prom.calls == [("a", 5.0)]
    (s,) = entry_series(entry("a", [Series({"x": "1"}, ((1.0, 2.0), (2.0, math.nan)))]))
    assert s.labels == {"x": "1"} and s.points == ((1.0, 2.0), (2.0, None))
    assert entry_series(None) == []
