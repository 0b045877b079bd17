"""SLO evaluation against a real Prometheus, on series whose answers we know.

We write five minutes of counters and histograms at 1 s resolution (an hour ago) in OpenMetrics
for serve_core, Ray Serve and the load generator, backfill them with promtool, start Prometheus
on that TSDB, and check availability, p99, recovery, burn rate and the client cross-check against
figures computed while generating the data. The alert rules go through promtool check/test.

The timeline, in seconds k after T0 (a request "in second k" is counted by the sample at T0+k):
  normal                 100 req/s: 80 at 1.5 ms, 18 at 9 ms, 2 at 120 ms, all 200
  k in (100, 130]        outage: 100 req/s answered 503 in 0.8 ms
  k in (130, 140]        partial: as normal but 10 of the 80 fast ones are 503
  k in (200, 205]        outage again
  k in (250, 255]        dead proxy: the client is refused 100 times a second, the servers count nothing
Replicas of Work: 2 running, 1 running and 1 starting in (100, 110] (Ray Serve: replica r2 unhealthy).
Ray Serve also counts its own health checks (route "/-/healthz", 1/s, 503 during the first outage):
they must not change its figures.

Not the Ray fixtures: this tier's conftest is imported, but no cluster is started.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from chaos.slo.alert_timeline import alert_conditions, timeline
from chaos.slo.alerts import BurnWindow, alert_rules, alert_rules_yaml
from chaos.slo.crosscheck import FIELDS, client_figures, cross_check, read_records
from chaos.slo.evaluate import Verdict, burn_rate, evaluate
from chaos.slo.prometheus import Prometheus, PrometheusQueryError, PrometheusUnavailable
from chaos.slo.queries import RAY_SERVE_BUCKETS_MS, SERVE_CORE_BUCKETS_S
from chaos.slo.spec import SLO, Availability, Latency, PromQL, Recovery
from chaos.slo.timeseries import collect, plot_queries

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("promtool")),
                       reason="needs the prometheus and promtool binaries: apt-get install prometheus"),
]

SECONDS = 300
T0 = (int(time.time()) // 60) * 60 - 3600  # an hour ago: inside retention, outside the head's live range
ROUTE = "/api"
SC_BOUNDS = [f"{b}" for b in SERVE_CORE_BUCKETS_S] + ["+Inf"]  # as prometheus_client writes them
RAY_BOUNDS = [f"{b}" for b in RAY_SERVE_BUCKETS_MS] + ["+Inf"]
FAULTS = (T0 + 100, T0 + 200, T0 + 250)


def outcomes(k: int) -> list[tuple[str, float, int]]:
    """(status or error kind, latency in seconds, count) of the requests in second k."""
    normal = [("200", 0.0015, 80), ("200", 0.009, 18), ("200", 0.12, 2)]
    if 100 < k <= 130 or 200 < k <= 205:
        return [("503", 0.0008, 100)]
    if 130 < k <= 140:
        return [("503", 0.0015, 10), ("200", 0.0015, 70), ("200", 0.009, 18), ("200", 0.12, 2)]
    if 250 < k <= 255:
        return [("refused", 0.0003, 100)]  # the load generator times the refusal
    return normal


def _le(bound: str) -> float:
    return math.inf if bound == "+Inf" else float(bound)


@dataclass
class Synthetic:
    """Every series as a list of cumulative values per second, plus the client records."""

    families: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    records: list[dict[str, object]] = field(default_factory=list)

    def series(self, family: str, kind: str, name: str, labels: dict[str, str]) -> list[float]:
        key = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        return self.families[(family, kind)].setdefault(key, [0.0] * (SECONDS + 1))

    def add(self, family: str, kind: str, name: str, labels: dict[str, str], k: int, n: float) -> None:
        values = self.series(family, kind, name, labels)
        for i in range(k, SECONDS + 1):
            values[i] += n

    def observe(self, family: str, name: str, labels: dict[str, str], bounds: list[str], k: int, value: float,
                n: int) -> None:
        for b in bounds:
            self.add(family, "histogram", f"{name}_bucket", {**labels, "le": b}, k, n if value <= _le(b) else 0)
        self.add(family, "histogram", f"{name}_count", labels, k, n)
        self.add(family, "histogram", f"{name}_sum", labels, k, n * value)

    def gauge(self, family: str, labels: dict[str, str], value: Callable[[int], float]) -> None:
        self.series(family, "gauge", family, labels)[:] = [value(k) for k in range(SECONDS + 1)]

    def openmetrics(self) -> str:
        out = []
        for (family, kind), series in self.families.items():
            out.append(f"# TYPE {family} {kind}")
            for key, values in series.items():
                out.extend(f"{key} {v:.10g} {T0 + i}" for i, v in enumerate(values))
        out.append("# EOF")
        return "\n".join(out) + "\n"


def generate() -> Synthetic:
    s = Synthetic()
    sc = {"route": ROUTE, "application": "app"}
    ray = {"route": ROUTE, "method": "GET", "application": "app"}
    # Every series exists from T0 at zero, as a pre-initialised counter would: see README_slo.md on new series.
    for status in ("200", "503"):
        s.add("serve_core_http_requests", "counter", "serve_core_http_requests_total", {**sc, "method": "GET", "status": status}, 0, 0)
        s.add("ray_serve_num_http_requests", "counter", "ray_serve_num_http_requests_total", {**ray, "status_code": status}, 0, 0)
        s.add("ray_serve_num_http_requests", "counter", "ray_serve_num_http_requests_total",
              {"route": "/-/healthz", "method": "GET", "application": "", "status_code": status}, 0, 0)
        s.observe("ray_serve_http_request_latency_ms", "ray_serve_http_request_latency_ms", {**ray, "status_code": status}, RAY_BOUNDS, 0, 0, 0)
    s.add("ray_serve_num_http_error_requests", "counter", "ray_serve_num_http_error_requests_total", {**ray, "error_code": "503"}, 0, 0)
    for status in ("200", "503", "refused"):
        s.add("loadgen_requests", "counter", "loadgen_requests_total", {"route": ROUTE, "status": status}, 0, 0)
    s.observe("serve_core_http_request_latency_seconds", "serve_core_http_request_latency_seconds", sc, SC_BOUNDS, 0, 0, 0)
    s.observe("loadgen_request_latency_seconds", "loadgen_request_latency_seconds", {"route": ROUTE}, SC_BOUNDS, 0, 0, 0)

    restarting = lambda k: 100 < k <= 110  # noqa: E731
    work = {"application": "app", "deployment": "Work"}
    s.gauge("serve_core_deployment_replicas", {**work, "state": "RUNNING"}, lambda k: 1 if restarting(k) else 2)
    s.gauge("serve_core_deployment_replicas", {**work, "state": "STARTING"}, lambda k: 1 if restarting(k) else 0)
    s.gauge("ray_serve_deployment_replica_healthy", {**work, "replica": "r1"}, lambda k: 1)
    s.gauge("ray_serve_deployment_replica_healthy", {**work, "replica": "r2"}, lambda k: 0 if restarting(k) else 1)

    for k in range(1, SECONDS + 1):
        health = "503" if 100 < k <= 130 else "200"
        s.add("ray_serve_num_http_requests", "counter", "ray_serve_num_http_requests_total",
              {"route": "/-/healthz", "method": "GET", "application": "", "status_code": health}, k, 1)
        i = 0
        total = sum(n for _, _, n in outcomes(k))
        for status, latency, n in outcomes(k):
            s.add("loadgen_requests", "counter", "loadgen_requests_total", {"route": ROUTE, "status": status}, k, n)
            s.observe("loadgen_request_latency_seconds", "loadgen_request_latency_seconds", {"route": ROUTE}, SC_BOUNDS, k, latency, n)
            for _ in range(n):  # spread intended starts over the second: [T0+k-1, T0+k)
                s.records.append({FIELDS.intended: T0 + k - 1 + i / total, FIELDS.route: ROUTE,
                                  FIELDS.status: None if status == "refused" else int(status),
                                  FIELDS.error: "refused" if status == "refused" else None,
                                  FIELDS.latency_s: latency})
                i += 1
            if status == "refused":
                continue  # no server saw these
            s.add("serve_core_http_requests", "counter", "serve_core_http_requests_total", {**sc, "method": "GET", "status": status}, k, n)
            s.observe("serve_core_http_request_latency_seconds", "serve_core_http_request_latency_seconds", sc, SC_BOUNDS, k, latency, n)
            s.add("ray_serve_num_http_requests", "counter", "ray_serve_num_http_requests_total", {**ray, "status_code": status}, k, n)
            s.observe("ray_serve_http_request_latency_ms", "ray_serve_http_request_latency_ms", {**ray, "status_code": status},
                      RAY_BOUNDS, k, latency * 1000, n)
            if status != "200":
                s.add("ray_serve_num_http_error_requests", "counter", "ray_serve_num_http_error_requests_total", {**ray, "error_code": status}, k, n)
    return s


# --- the figures the data was built to have --------------------------------------------------

def counted(first: int, last: int, server: bool = True) -> tuple[int, int]:
    """(good, all) requests in seconds first..last; ``server``: only what a server could count."""
    good = total = 0
    for k in range(first, last + 1):
        for status, _, n in outcomes(k):
            if server and status == "refused":
                continue
            total += n
            good += n if status == "200" else 0
    return good, total


def histogram_quantile(q: float, first: int, last: int, bounds: list[float], scale: float, server: bool = True) -> float:
    """Prometheus' interpolation over the observations of seconds first..last; ``server``: answered only."""
    counts = [0] * len(bounds)
    for k in range(first, last + 1):
        for status, latency, n in outcomes(k):
            if not (server and status == "refused"):
                counts[next(i for i, b in enumerate(bounds) if latency * scale <= b)] += n
    rank = q * sum(counts)
    cum = 0
    for i, c in enumerate(counts):
        if cum + c >= rank:
            lo = bounds[i - 1] if i else 0.0
            return lo + (bounds[i] - lo) * (rank - cum) / c
        cum += c
    raise AssertionError("rank beyond the histogram")


# --- the server --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synthetic, Path]:
    d = tmp_path_factory.mktemp("slo")
    s = generate()
    (d / "series.om").write_text(s.openmetrics())
    with open(d / "records.jsonl", "w") as f:
        for r in s.records:
            f.write(json.dumps(r) + "\n")
    return s, d


@pytest.fixture(scope="module")
def prom(data: tuple[Synthetic, Path]) -> Iterator[Prometheus]:
    _, d = data
    tsdb = d / "tsdb"
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(d / "series.om"), str(tsdb)],
                   check=True, capture_output=True, timeout=120)
    (d / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    port = free_port()
    log = open(d / "prometheus.log", "w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    client = Prometheus(f"http://127.0.0.1:{port}", timeout_s=10)
    try:
        try:
            client.wait_ready(timeout_s=30)
        except PrometheusUnavailable:
            log.flush()
            raise AssertionError(f"prometheus did not start:\n{(d / 'prometheus.log').read_text()[-3000:]}") from None
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


SLOS: list[SLO] = [
    Availability(name="avail", objective=0.99),
    Latency(name="p99", percentile=99, threshold_ms=130),
    Recovery(name="recovery", max_s=50),
]


@pytest.mark.parametrize("backend", ["serve_core", "ray_serve"])
def test_whole_run(prom: Prometheus, backend: str) -> None:
    good, total = counted(1, SECONDS)
    assert (good, total) == (25900, 29500)
    res = {r.name: r for r in evaluate(SLOS, prom, backend, T0, T0 + SECONDS, FAULTS)}

    assert res["avail"].verdict is Verdict.VIOLATED and res["avail"].ok is False
    assert res["avail"].value == pytest.approx(good / total, rel=1e-9)

    bounds, scale = (list(SERVE_CORE_BUCKETS_S), 1.0) if backend == "serve_core" else (list(RAY_SERVE_BUCKETS_MS), 1000.0)
    p99 = histogram_quantile(0.99, 1, SECONDS, bounds + [math.inf], scale) * (1000 / scale)
    assert res["p99"].value == pytest.approx(p99, rel=1e-9)
    # 121.6 ms in serve_core's (100, 150] bucket, 143.3 ms in Ray Serve's coarser (100, 200]: against 130 ms
    assert res["p99"].ok is (backend == "serve_core")

    # 45 s (errors until second 140, clean 5 s window from 145), 10 s, and 6 s: the dead proxy is
    # invisible server-side until a whole window has no request in it (see test_cross_check_*).
    rec = res["recovery"]
    assert rec.value == 45 and rec.ok is True, rec.detail
    assert "recovered in 45 s" in rec.detail and "recovered in 10 s" in rec.detail and "recovered in 6 s" in rec.detail


def test_ray_latency_is_coarser(prom: Prometheus) -> None:
    # The same requests; Ray Serve's buckets (100, 200] ms put p99 higher than serve_core's (100, 150].
    sc = evaluate([SLOS[1]], prom, "serve_core", T0, T0 + SECONDS)[0]
    ray = evaluate([SLOS[1]], prom, "ray_serve", T0, T0 + SECONDS)[0]
    assert sc.value is not None and ray.value is not None
    assert 100 < sc.value <= 150 and 100 < ray.value <= 200 and ray.value > sc.value


@pytest.mark.parametrize("backend,p99_ms", [("serve_core", 125.0), ("ray_serve", 150.0)])
def test_steady_window(prom: Prometheus, backend: str, p99_ms: float) -> None:
    res = evaluate(SLOS[:2] + [Recovery(name="recovery", max_s=1)], prom, backend, T0 + 150, T0 + 200)
    assert [r.verdict for r in res] == [Verdict.MET, Verdict.VIOLATED if p99_ms > 130 else Verdict.MET, Verdict.NO_DATA]
    assert res[0].value == 1.0
    assert res[1].value == pytest.approx(p99_ms, rel=1e-9)  # 0.99 is halfway through the 2% in (100, 150] / (100, 200]
    assert "no fault times" in res[2].detail


def test_stricter_recovery_threshold_and_route(prom: Prometheus) -> None:
    # With 20% errors allowed, the partial period counts as healthy once the full outage leaves the window.
    slo = Recovery(name="r", max_s=30, healthy_error_ratio=0.2, route=ROUTE)
    r = evaluate([slo], prom, "serve_core", T0, T0 + SECONDS, FAULTS[:1])[0]
    assert r.value == 35 and r.verdict is Verdict.VIOLATED, r.detail
    assert 'route="/api"' in r.query


def test_no_traffic_is_no_data(prom: Prometheus) -> None:
    res = evaluate(SLOS, prom, "serve_core", T0 - 1000, T0 - 900, [T0 - 950])
    assert [r.verdict for r in res] == [Verdict.NO_DATA] * 3
    assert all(r.ok is None and r.value is None for r in res)
    other_route = evaluate([Availability(objective=0.9, route="/nope")], prom, "serve_core", T0, T0 + SECONDS)[0]
    assert other_route.verdict is Verdict.NO_DATA and "/nope" in other_route.detail


def test_promql_kind(prom: Prometheus) -> None:
    slos: list[SLO] = [
        PromQL(name="few-503", query='sum(increase(serve_core_http_requests_total{status="503"}[{window}]))', op="<", threshold=100),
        PromQL(name="served", query="sum(increase(serve_core_http_requests_total[{window}]))", op=">=", threshold=29500),
        PromQL(name="absent", query="sum(increase(no_such_metric_total[{window}]))", op="<", threshold=1),
        PromQL(name="bad", query="sum(increase(serve_core_http_requests_total[{window}]", op="<", threshold=1),
        PromQL(name="many", query="increase(serve_core_http_requests_total[{window}])", op="<", threshold=1),
    ]
    res = {r.name: r for r in evaluate(slos, prom, "serve_core", T0, T0 + SECONDS)}
    assert res["few-503"].verdict is Verdict.VIOLATED and res["few-503"].value == pytest.approx(3600)
    assert "[300s]" in res["few-503"].query
    assert res["served"].verdict is Verdict.MET and res["served"].value == pytest.approx(29500)
    assert res["absent"].verdict is Verdict.NO_DATA
    assert res["bad"].verdict is Verdict.ERROR and "rejected the query" in res["bad"].detail
    assert res["many"].verdict is Verdict.ERROR and "aggregate" in res["many"].detail


@pytest.mark.parametrize("backend", ["serve_core", "ray_serve", "loadgen"])
def test_burn_rate(prom: Prometheus, backend: str) -> None:
    assert burn_rate(prom, backend, 0.99, T0 + 130, 30) == pytest.approx(100.0)  # all 503 for 30 s
    good, total = counted(81, 140)
    assert burn_rate(prom, backend, 0.999, T0 + 140, 60) == pytest.approx((1 - good / total) / 0.001)
    assert burn_rate(prom, backend, 0.999, T0 + 190, 30, route=ROUTE) == 0.0
    assert burn_rate(prom, backend, 0.999, T0 - 1000, 30) is None


def test_loadgen_sees_refused(prom: Prometheus) -> None:
    good, total = counted(1, SECONDS, server=False)
    avail, p99 = evaluate([SLOS[0], Latency(name="p99", percentile=99, threshold_ms=130, route=ROUTE)],
                          prom, "loadgen", T0, T0 + SECONDS)
    assert avail.value == pytest.approx(good / total) and total == 30000
    expected = histogram_quantile(0.99, 1, SECONDS, list(SERVE_CORE_BUCKETS_S) + [math.inf], 1.0, server=False) * 1000
    assert p99.value == pytest.approx(expected, rel=1e-9) and p99.ok is True


def test_cross_check_whole_run_shows_the_refused(prom: Prometheus, data: tuple[Synthetic, Path]) -> None:
    _, d = data
    c = cross_check(prom, "serve_core", str(d / "records.jsonl"), T0, T0 + SECONDS)  # a path, as the runner passes
    assert c.client.total == 30000 and c.client.good == 25900 and c.client.failures == {"503": 3600, "refused": 500}
    assert c.server.total == pytest.approx(29500)
    assert c.unseen_by_server == pytest.approx(500)
    assert c.availability_diff_pp == pytest.approx((25900 / 30000 - 25900 / 29500) * 100)
    assert c.availability_ok is False and c.ok is False
    assert c.client.p99_ms == pytest.approx(120.0)  # nearest rank: the 2% at 120 ms holds the 99th percentile
    assert c.p99_client_bucket_ms == c.p99_server_bucket_ms == (100.0, 150.0)
    assert c.p99_bucket_distance == 0 and c.p99_ok is True
    assert "500 request(s) got no answer" in c.summary and "refused=500" in c.summary


def test_cross_check_agrees_when_nothing_is_refused(prom: Prometheus, data: tuple[Synthetic, Path]) -> None:
    _, d = data
    records = read_records(d / "records.jsonl")
    c = cross_check(prom, "ray_serve", records, T0 + 150, T0 + 200, route=ROUTE)
    assert c.ok is True and c.availability_diff_pp == pytest.approx(0.0) and c.unseen_by_server == pytest.approx(0)
    assert c.p99_client_bucket_ms == c.p99_server_bucket_ms == (100.0, 200.0)
    # The load generator's own metrics count the refused too, so it agrees with its records over the whole run.
    whole = cross_check(prom, "loadgen", records, T0, T0 + SECONDS)
    assert whole.ok is True and whole.availability_diff_pp == pytest.approx(0) and whole.unseen_by_server == pytest.approx(0)
    assert whole.client.p99_ms == pytest.approx(120.0) and whole.p99_bucket_distance == 0
    assert client_figures(records, T0, T0 + SECONDS).unanswered == 500


def test_prometheus_down_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there now
    client = Prometheus(f"http://127.0.0.1:{port}", timeout_s=2)
    assert client.ready() is False
    with pytest.raises(PrometheusUnavailable) as e:
        evaluate(SLOS, client, "serve_core", T0, T0 + SECONDS)
    msg = str(e.value)
    assert f"127.0.0.1:{port}" in msg and "not reachable" in msg and "Fix: start Prometheus" in msg
    assert "serve_core_http_requests_total" in msg and e.value.query is not None
    with pytest.raises(PrometheusUnavailable):
        burn_rate(client, "serve_core", 0.999, T0, 30)


def test_query_error_names_the_query(prom: Prometheus) -> None:
    with pytest.raises(PrometheusQueryError) as e:
        prom.query("sum(", at=T0)
    assert e.value.query == "sum(" and prom.url in str(e.value) and "/graph" in e.value.fix


# --- alert rules through promtool -------------------------------------------------------------

RULE_SLOS: list[SLO] = [
    Availability(name="availability", objective=0.999),
    Latency(name="p99", percentile=99, threshold_ms=200),
    PromQL(name="few-503", query='sum(increase(serve_core_http_requests_total{status="503"}[{window}]))', op="<", threshold=100),
]


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("backend", ["serve_core", "ray_serve", "loadgen"])
def test_rules_pass_promtool_check(tmp_path: Path, backend: str) -> None:
    slos = RULE_SLOS if backend == "serve_core" else RULE_SLOS[:2]
    (tmp_path / "rules.yml").write_text(alert_rules_yaml(slos, backend, scale=0.1))
    r = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def _values(per_second: list[int]) -> str:
    cum, out = 0, ["0"]
    for n in per_second:
        cum += n
        out.append(str(cum))
    return " ".join(out)


def test_fast_burn_alert_fires_at_the_expected_time(tmp_path: Path) -> None:
    # Windows scaled by 0.2: fast 60s/12s at 14.4x, slow 360s/60s at 6x; objective 0.999.
    # 100 req/s; from second 121 on, 5 of them are 503 (5%).
    #  fast: 60 s ratio 5(t-120)/6000 > 0.0144 first at t=138 (12 s ratio is 5% by then)
    #  slow: the 360 s window is not full yet; ratio 5(t-120)/(100 t) > 0.006 first at t=137
    rules = alert_rules_yaml(RULE_SLOS[:1], "serve_core", scale=0.2, interval_s=1)
    (tmp_path / "rules.yml").write_text(rules)
    series = 'serve_core_http_requests_total{route="/api",application="app",method="GET",status="%s"}'
    n = 200
    outage = {"200": [100] * 120 + [95] * (n - 120), "503": [0] * 120 + [5] * (n - 120)}
    healthy = {"200": [100] * n, "503": [0] * n}

    def alert(window: str, severity: str, value: str) -> dict[str, object]:
        long_w, short_w, factor = {"fast": ("60s", "12s", "14.4"), "slow": ("360s", "60s", "6")}[window]
        return {
            "exp_labels": {"slo": "availability", "backend": "serve_core", "window": window, "severity": severity},
            "exp_annotations": {
                "summary": f"availability: error budget burning over {factor}x too fast ({long_w} and {short_w})",
                "description": f"Error ratio over {long_w} is {value}; objective 0.999 allows 0.001.",
            },
        }

    def case(values: dict[str, list[int]], checks: list[tuple[str, list[dict[str, object]]]]) -> dict[str, object]:
        return {
            "interval": "1s",
            "input_series": [{"series": series % s, "values": _values(v)} for s, v in values.items()],
            "alert_rule_test": [{"eval_time": t, "alertname": "SLOErrorBudgetBurn", "exp_alerts": exp} for t, exp in checks],
        }

    slow = alert("slow", "ticket", "0.6204%")  # 85 / 13700 at t=137; 90 / 13800 at t=138:
    slow_138 = alert("slow", "ticket", "0.6522%")
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1s",
        "tests": [
            case(outage, [("136s", []), ("137s", [slow]), ("138s", [alert("fast", "page", "1.5%"), slow_138])]),
            case(healthy, [("137s", []), ("138s", []), ("200s", [])]),
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    r = _promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr + "\n" + rules

    # And the test can fail: expecting the fast alert one second early is caught.
    tests["tests"] = [case(outage, [("137s", [alert("fast", "page", "1.4167%"), slow])])]
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    assert _promtool("test", "rules", "tests.yml", cwd=tmp_path).returncode != 0


# --- the report's series and the alerts that would have fired ---------------------------------


@pytest.mark.parametrize("backend", ["serve_core", "ray_serve"])
def test_plot_series(prom: Prometheus, backend: str) -> None:
    got = collect(prom, plot_queries(backend), T0 + 10, T0 + SECONDS, 1.0)
    assert all(e["error"] is None for e in got.values()), got

    def at(name: str, k: int) -> float | None:
        (series,) = got[name]["series"]
        return dict((round(t), v) for t, v in series["points"]).get(T0 + k)

    assert at("requests", 50) == pytest.approx(100.0) and at("errors", 50) == 0.0
    assert at("requests", 120) == pytest.approx(100.0) and at("errors", 120) == pytest.approx(100.0)
    assert at("requests", 255) == 0.0  # the dead proxy: the servers count nothing
    assert at("p50", 50) is not None and 1 < at("p50", 50) < 2 and at("p99", 50) > 100  # type: ignore[operator]
    (work,) = got["replicas"]["series"]
    assert work["labels"] == {"application": "app", "deployment": "Work"}
    replicas = dict((round(t), v) for t, v in work["points"])
    assert (replicas[T0 + 100], replicas[T0 + 105], replicas[T0 + 111]) == (2, 1, 2)  # running / healthy only


def _firings(prom: Prometheus, backend: str, windows: tuple[BurnWindow, ...]) -> list[tuple[float, float | None, float]]:
    """(fired at, resolved at, pending from) of the fast burn alert, seconds after T0, from T0 + 60 on."""
    rules = alert_rules([Availability(objective=0.999)], backend, windows=windows, scale=0.1)
    conditions = alert_conditions(rules)
    start, end = T0 + 60, T0 + SECONDS
    results = {}
    for c in conditions:  # the recording rules are not loaded into this Prometheus: inlined, as after a run
        results.update(collect(prom, {c.key: c.query}, start, end, c.step_s))
    assert all(r["error"] is None for r in results.values()), results
    tl = timeline(conditions, results, start, end)
    assert tl.errors == {}
    return [(f.fired_at - T0, None if f.resolved_at is None else f.resolved_at - T0, f.pending_at - T0)
            for f in tl.firings if f.labels["window"] == "fast"]


@pytest.mark.parametrize("backend", ["serve_core", "ray_serve"])
def test_fast_burn_alert_fires_within_the_outage_and_not_before(prom: Prometheus, backend: str) -> None:
    # Windows scaled by 0.1: fast burn over 30s and 6s at 14.4x the budget of 0.999, every 1.5 s.
    # All 503 from second 101: both windows pass 1.44% at the first evaluation that counts second 101;
    # the 6 s window is clean again once the partial outage (to 140) has left it.
    (first, second) = _firings(prom, backend, (BurnWindow("fast", 300, 60, 14.4, "page"),))
    fired, resolved, pending = first
    assert 101 <= fired < 101 + 1.5 and pending == fired  # the first evaluation that sees second 101
    assert resolved is not None and 140 < resolved <= 140 + 6 + 1.5
    fired, resolved, _ = second  # the second outage, 201 to 205; the dead proxy (251 to 255) counts nothing
    assert 201 <= fired < 201 + 1.5 and resolved is not None and 205 < resolved <= 205 + 6 + 1.5


@pytest.mark.parametrize("backend", ["serve_core", "ray_serve"])
def test_for_holds_the_alert_back_and_keeps_a_short_outage_quiet(prom: Prometheus, backend: str) -> None:
    # for: 20 s (200 s scaled): the first outage holds for 40 s and fires 20 s in; the second holds about
    # 10 s and never fires.
    ((fired, resolved, pending),) = _firings(prom, backend, (BurnWindow("fast", 300, 60, 14.4, "page", for_s=200),))
    assert 101 <= pending < 101 + 1.5 and 20 <= fired - pending < 20 + 1.5 and fired < 130
    assert resolved is not None and 140 < resolved <= 147.5
