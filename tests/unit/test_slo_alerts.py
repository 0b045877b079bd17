"""Alert-rule generation (the rules themselves go through promtool in the integration tier)."""

import pytest
import yaml

from chaos.slo.alerts import SHORT_RUN_WINDOWS, SRE_WORKBOOK_WINDOWS, BurnWindow, alert_rules, alert_rules_yaml
from chaos.slo.queries import SLOError
from chaos.slo.spec import SLO, Availability, Latency, PromQL, Recovery

pytestmark = pytest.mark.unit


def rules_of(doc):
    (group,) = doc["groups"]
    return group, [r for r in group["rules"] if "record" in r], [r for r in group["rules"] if "alert" in r]


def test_burn_rate_alerts_for_availability():
    doc = alert_rules([Availability(objective=0.999)], "serve_core")
    group, records, alerts = rules_of(doc)
    assert [r["record"] for r in records] == ["slo:error_ratio:300s", "slo:error_ratio:60s", "slo:error_ratio:1800s"]
    assert all(r["labels"] == {"slo": "availability", "backend": "serve_core"} for r in records)
    assert records[1]["expr"] == (
        '(sum(increase(serve_core_http_requests_total{status!~"2.."}[60s])) or vector(0))'
        " / sum(increase(serve_core_http_requests_total[60s]))"
    )
    fast, slow = alerts
    assert fast["expr"] == (
        'slo:error_ratio:300s{slo="availability",backend="serve_core"} > 0.0144'
        ' and slo:error_ratio:60s{slo="availability",backend="serve_core"} > 0.0144'
    )
    assert fast["labels"] == {"slo": "availability", "backend": "serve_core", "window": "fast", "severity": "page"}
    assert slow["expr"].endswith('slo:error_ratio:300s{slo="availability",backend="serve_core"} > 0.006')
    assert group["interval"] == "15s"  # a quarter of the shortest window
    # Records come before the alerts that read them (one group, evaluated in order).
    names = [r.get("record") or r["alert"] for r in group["rules"]]
    assert names.index("SLOErrorBudgetBurn") > max(names.index(r["record"]) for r in records)


def test_scale_shrinks_windows_for_short_runs():
    doc = alert_rules([Availability(objective=0.99, route="/api")], "ray_serve", scale=0.1)
    group, records, alerts = rules_of(doc)
    assert [r["record"] for r in records] == ["slo:error_ratio:30s", "slo:error_ratio:6s", "slo:error_ratio:180s"]
    assert 'route="/api"' in records[0]["expr"] and "ray_serve_num_http_requests_total" in records[0]["expr"]
    assert "> 0.144" in alerts[0]["expr"] and "> 0.06" in alerts[1]["expr"]
    assert group["interval"] == "1500ms"


def test_workbook_windows_and_for():
    w = (BurnWindow("fast", 3600, 300, 14.4, "page", for_s=120),) + SRE_WORKBOOK_WINDOWS[1:]
    _, records, alerts = rules_of(alert_rules([Availability(objective=0.999)], "serve_core", windows=w, scale=0.5))
    assert alerts[0]["for"] == "60s" and "for" not in alerts[1]
    assert [r["record"] for r in records] == [
        "slo:error_ratio:1800s", "slo:error_ratio:150s", "slo:error_ratio:10800s", "slo:error_ratio:900s"]


def test_shared_windows_are_recorded_once():
    w = SHORT_RUN_WINDOWS + (BurnWindow("slower", 1800, 60, 3, "ticket"),)
    _, records, _ = rules_of(alert_rules([Availability(objective=0.999)], "serve_core", windows=w))
    assert len(records) == len({r["record"] for r in records}) == 3


def test_latency_promql_and_recovery():
    slos: list[SLO] = [
        Latency(name="p99", percentile=99, threshold_ms=250),
        PromQL(name="q", query="sum(rate(x[{window}]))", op=">=", threshold=10),
        Recovery(max_s=5),
    ]
    _, records, alerts = rules_of(alert_rules(slos, "ray_serve", latency_window_s=30, latency_for_s=10))
    assert records == [{
        "record": "slo:latency_ms:30s",
        "expr": 'histogram_quantile(0.99, sum by (le) (increase(ray_serve_http_request_latency_ms_bucket{route!~"/-/.*"}[30s])))',
        "labels": {"slo": "p99", "backend": "ray_serve", "percentile": "99"},
    }]
    lat, q = alerts  # recovery has no alert
    assert lat["expr"] == 'slo:latency_ms:30s{slo="p99",backend="ray_serve",percentile="99"} > 250' and lat["for"] == "10s"
    assert q["expr"] == "(sum(rate(x[30s]))) < 10"


def test_yaml_round_trips():
    text = alert_rules_yaml([Availability(objective=0.999)], "serve_core", scale=0.2)
    assert yaml.safe_load(text) == alert_rules([Availability(objective=0.999)], "serve_core", scale=0.2)


def test_bad_inputs():
    with pytest.raises(SLOError, match="scale"):
        alert_rules([Availability(objective=0.9)], "serve_core", scale=0)
    with pytest.raises(SLOError, match="long_s > short_s"):
        alert_rules([Availability(objective=0.9)], "serve_core", windows=[BurnWindow("x", 60, 300, 14.4, "page")])
    with pytest.raises(SLOError, match="unknown backend"):
        alert_rules([Availability(objective=0.9)], "nginx")
