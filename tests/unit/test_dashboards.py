"""The Grafana dashboards and provisioning files: generated equals checked in, the provisioning
documents have Grafana's structure, every panel queries Prometheus through the templated data
source, and the SLO panels use chaos' own queries. (Grafana itself has no package here; every
panel's query is run against a real Prometheus in tests/e2e/test_dashboards.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chaos.slo.alerts import alert_rules
from dashboards import build, definitions, provision
from dashboards.check import DEFAULT_VALUES, has_value, parse_label_values
from dashboards.grafana_model import (
    BUILTIN_VARIABLES,
    DATASOURCE,
    GRID_WIDTH,
    SCHEMA_VERSION,
    Annotation,
    Panel,
    Query,
    reads_metric,
    substitute,
    variables_in,
)

ROOT = build.HERE
DASHBOARDS = definitions.all_dashboards()


def load_json(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text())


def checked_in_dashboards() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((ROOT / build.DASHBOARD_DIR).glob("*.json"))]


def query_panels(doc: dict) -> list[dict]:
    return [p for p in doc["panels"] if p["type"] != "row"]


# --- generated equals checked in ------------------------------------------------------------


def test_checked_in_files_are_what_the_generator_writes() -> None:
    diffs = build.differences(ROOT, build.render())
    assert diffs == [], f"out of date (run `python -m dashboards.build`): {diffs}"


def test_check_flag_reports_a_changed_and_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--out", str(tmp_path), "--check"]) == 0
    target = tmp_path / build.file_name(DASHBOARDS[0])
    target.write_text(target.read_text().replace("Requests/s", "Requests per second"))
    (tmp_path / build.DASHBOARD_DIR / "old.json").write_text("{}")
    capsys.readouterr()
    assert build.main(["--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"{build.file_name(DASHBOARDS[0])}: differs" in out and "grafana/old.json: no longer generated" in out
    assert build.main(["--out", str(tmp_path)]) == 0  # rewrites it and removes the stale one
    assert build.differences(tmp_path, build.render()) == []


def test_prometheus_url_option_changes_only_the_data_source() -> None:
    default, other = build.render(), build.render("http://10.77.0.1:9391")
    assert [k for k in default if default[k] != other[k]] == [build.DATASOURCE_FILE]
    assert yaml.safe_load(other[build.DATASOURCE_FILE])["datasources"][0]["url"] == "http://10.77.0.1:9391"


# --- provisioning ---------------------------------------------------------------------------


def test_datasource_provisioning_has_grafanas_structure() -> None:
    doc = yaml.safe_load((ROOT / build.DATASOURCE_FILE).read_text())
    assert doc["apiVersion"] == 1 and set(doc) == {"apiVersion", "datasources"}
    sources = doc["datasources"]
    assert len(sources) == 1 and sum(bool(s.get("isDefault")) for s in sources) == 1
    s = sources[0]
    for key in ("name", "type", "access", "url", "uid"):
        assert s.get(key), f"datasource lacks {key}"
    assert s["type"] == "prometheus" and s["access"] == "proxy"
    assert s["url"] == "http://prometheus:9090"  # the compose service, by default
    assert s["jsonData"]["timeInterval"].endswith("s")


def test_dashboard_provider_points_at_the_generated_dashboards() -> None:
    doc = yaml.safe_load((ROOT / build.PROVIDER_FILE).read_text())
    assert doc["apiVersion"] == 1 and set(doc) == {"apiVersion", "providers"}
    (p,) = doc["providers"]
    for key in ("name", "type", "options"):
        assert p.get(key), f"provider lacks {key}"
    assert p["type"] == "file" and p["orgId"] == 1
    # The container path is where deployments mount dashboards/grafana/ (README, "Dashboards").
    assert p["options"]["path"] == provision.CONTAINER_DASHBOARDS_DIR
    files = sorted((ROOT / build.DASHBOARD_DIR).glob("*.json"))
    assert [f"{build.DASHBOARD_DIR}/{f.name}" for f in files] == sorted(build.file_name(d) for d in DASHBOARDS)
    for d in DASHBOARDS:
        assert (ROOT / build.file_name(d)).is_file(), build.file_name(d)


def test_compose_mounts_the_files_where_the_provisioning_expects_them() -> None:
    compose = ROOT.parent / "compose" / "docker-compose.yml"
    if not compose.exists():
        pytest.skip("no compose/docker-compose.yml")
    grafana = (yaml.safe_load(compose.read_text()).get("services") or {}).get("grafana")
    if grafana is None:
        pytest.skip("compose has no grafana service")
    mounts = {}
    for v in grafana.get("volumes", []):
        source, target = str(v).split(":")[:2]
        mounts[(compose.parent / source).resolve()] = target
    assert mounts.get(ROOT / "provisioning") == "/etc/grafana/provisioning", mounts
    assert mounts.get(ROOT / build.DASHBOARD_DIR) == provision.CONTAINER_DASHBOARDS_DIR, mounts
    sources = yaml.safe_load((ROOT / build.DATASOURCE_FILE).read_text())["datasources"]
    assert sources[0]["url"].removeprefix("http://").split(":")[0] in yaml.safe_load(compose.read_text())["services"]


def test_every_dashboards_datasource_variable_defaults_to_the_provisioned_source() -> None:
    uid = yaml.safe_load((ROOT / build.DATASOURCE_FILE).read_text())["datasources"][0]["uid"]
    for doc in checked_in_dashboards():
        (var,) = [v for v in doc["templating"]["list"] if v["type"] == "datasource"]
        assert var["name"] == "datasource" and var["query"] == "prometheus" and var["current"]["value"] == uid


# --- the dashboards' JSON ---------------------------------------------------------------------


def test_uids_and_titles_are_unique() -> None:
    docs = checked_in_dashboards()
    assert len(docs) == 4
    uids = [d["uid"] for d in docs]
    assert len(set(uids)) == len(uids) and all(0 < len(u) <= 40 for u in uids)
    assert len({d["title"] for d in docs}) == len(docs)


def test_dashboards_follow_grafanas_model() -> None:
    for doc in checked_in_dashboards():
        assert doc["schemaVersion"] == SCHEMA_VERSION and doc["id"] is None
        for key in ("title", "uid", "panels", "templating", "annotations", "time", "refresh", "tags"):
            assert key in doc, f"{doc['uid']} lacks {key}"
        ids = [p["id"] for p in doc["panels"]]
        assert len(set(ids)) == len(ids), f"{doc['uid']}: duplicate panel ids"
        assert {p["type"] for p in doc["panels"]} <= {"row", "timeseries", "stat"}


def test_every_panel_has_the_datasource_and_a_target_with_an_expr() -> None:
    for doc in checked_in_dashboards():
        panels = query_panels(doc)
        assert panels
        for p in panels:
            where = f"{doc['uid']} / {p['title']}"
            assert p["datasource"] == DATASOURCE, where
            assert p["targets"], f"{where}: no target"
            assert p["fieldConfig"]["defaults"]["unit"], f"{where}: no unit"
            ref_ids = [t["refId"] for t in p["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), where
            for t in p["targets"]:
                assert t["datasource"] == DATASOURCE and t["expr"].strip() and t["legendFormat"], where


def test_panels_fit_the_grid_without_overlapping() -> None:
    for doc in checked_in_dashboards():
        cells: dict[tuple[int, int], str] = {}
        for p in doc["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= GRID_WIDTH and g["h"] > 0, p["title"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{doc['uid']}: {p['title']!r} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = p["title"]


def test_only_declared_variables_are_used() -> None:
    for d in DASHBOARDS:
        known = {"datasource", *BUILTIN_VARIABLES, *(v.name for v in d.variables)}
        exprs = [q.expr for p in d.panels() for q in p.queries] + [a.expr for a in d.annotations]
        exprs += [v.query for v in d.variables]
        for e in exprs:
            assert variables_in(e) <= known, f"{d.uid}: {e} uses {variables_in(e) - known}"


def test_variables_are_label_values_queries() -> None:
    for d in DASHBOARDS:
        for v in d.variables:
            selector, label = parse_label_values(v.query)
            assert label == v.name and selector.startswith("serve_core_")


def test_annotations_query_prometheus_through_the_datasource() -> None:
    for doc in checked_in_dashboards():
        builtin, *ours = doc["annotations"]["list"]
        assert builtin["builtIn"] == 1
        assert ours, f"{doc['uid']} has no fault annotations"
        for a in ours:
            assert a["datasource"] == DATASOURCE and a["expr"] and a["name"] and a["enable"] is True


# --- the queries --------------------------------------------------------------------------


def test_slo_panels_use_chaos_queries_and_alert_limits() -> None:
    """The burn rates and alert conditions are built from the very recording rules and limits that
    chaos.slo.alerts writes for the same SLOs."""
    exprs = [q.expr for p in definitions.chaos_slo().panels() for q in p.queries]
    text = "\n".join(exprs)
    for b in (definitions.SERVER, definitions.CLIENT):
        rules = alert_rules([definitions.AVAILABILITY, definitions.LATENCY], b)["groups"][0]["rules"]
        records = [r for r in rules if "record" in r]
        assert records
        for r in records:
            assert f"({r['expr']})" in text, f"{r['record']} {r['labels']}: {r['expr']} is on no panel"
        for alert in (r for r in rules if r.get("alert") == "SLOErrorBudgetBurn"):
            limit = alert["expr"].rsplit(" > ", 1)[1]
            w = next(w for w in definitions.BURN_WINDOWS if w.name == alert["labels"]["window"])
            assert f"/ {limit}" in definitions.burn_alert_condition(b, w)
        (latency,) = [r for r in rules if r.get("alert") == "SLOLatencyHigh"]
        assert latency["expr"].endswith(f"> {definitions.LATENCY.threshold_ms:g}")
        assert definitions.latency_alert_condition(b).endswith(f"/ {definitions.LATENCY.threshold_ms:g}")


def test_at_window_swaps_the_seconds_for_a_grafana_variable() -> None:
    q = definitions.at_window(lambda w: definitions.error_ratio_query(definitions.SERVER, w), "$__range")
    assert "[$__range]" in q and "86399" not in q
    with pytest.raises(ValueError, match="chaos query builder"):
        definitions.at_window(lambda w: "up", "$__range")


def test_the_panels_cover_the_issue() -> None:
    metrics = {d.uid: {m for p in d.panels() for m in p.metrics()} for d in DASHBOARDS}
    assert {"serve_core_http_requests_total", "serve_core_http_request_latency_seconds_bucket",
            "serve_core_replica_requests_total", "serve_core_proxy_ongoing_requests"} <= metrics["serve-core-serving"]
    assert {"serve_core_deployment_target_replicas", "serve_core_autoscaler_desired_replicas",
            "serve_core_deployment_replicas", "serve_core_router_queued_requests",
            "serve_core_autoscaler_decisions_total"} <= metrics["serve-core-autoscaling"]
    assert {"serve_core_http_requests_total", "loadgen_requests_total",
            "ray_node_manager_unexpected_worker_failure_total"} <= metrics["serve-core-chaos-slo"]
    assert {"ray_cluster_active_nodes", "ray_node_cpu_utilization", "ray_node_mem_used"} <= metrics["serve-core-cluster"]


@pytest.mark.skipif(not shutil.which("promtool"), reason="needs promtool: apt-get install prometheus")
def test_every_query_parses_in_promtool(tmp_path: Path) -> None:
    """Each expression, with Grafana's variables substituted, as a recording rule `promtool check rules` parses."""
    values = {**DEFAULT_VALUES, "__range": "15m"}
    rules = []
    for d in DASHBOARDS:
        exprs = [q.expr for p in d.panels() for q in p.queries] + [a.expr for a in d.annotations]
        rules += [{"record": f"dashboard:check:{i}", "expr": substitute(e, values)} for i, e in enumerate(exprs)]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, width=1000))
    p = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


# --- the model's small pieces ---------------------------------------------------------------


def test_substitute_replaces_every_form_and_names_a_missing_variable() -> None:
    expr = 'rate(x{a=~"$application",b=~"${deployment}",c=~"${application:regex}"}[$__rate_interval])'
    assert substitute(expr, {"application": ".*", "deployment": "d", "__rate_interval": "30s"}) == \
        'rate(x{a=~".*",b=~"d",c=~".*"}[30s])'
    assert variables_in(expr) == {"application", "deployment", "__rate_interval"}
    with pytest.raises(KeyError, match=r"\$deployment"):
        substitute(expr, {"application": ".*", "__rate_interval": "30s"})


def test_a_panel_must_read_the_metric_it_is_about() -> None:
    assert reads_metric("sum(rate(serve_core_http_requests_total[1m]))", "serve_core_http_requests_total")
    assert not reads_metric("sum(rate(serve_core_http_requests_total_x[1m]))", "serve_core_http_requests_total")
    with pytest.raises(ValueError, match="does not read"):
        Panel("p", "loadgen_requests_total", (Query("sum(up)"),))
    with pytest.raises(ValueError, match="no query"):
        Panel("p", "up", ())
    with pytest.raises(ValueError, match="kind"):
        Panel("p", "up", (Query("up"),), kind="graph")
    with pytest.raises(ValueError, match="does not read"):
        Annotation("a", "up", "ALERTS", "t")


def test_rose_counts_a_new_series_from_zero() -> None:
    q = definitions.rose('c{x="1"}', "x", "10s")
    assert q == 'sum by (x) (c{x="1"} - (c{x="1"} offset 10s or c{x="1"} * 0))'


def test_has_value_wants_a_finite_number() -> None:
    assert not has_value([])
    assert not has_value([{"metric": {}, "value": [0, "NaN"]}])
    assert has_value([{"metric": {}, "value": [0, "NaN"]}, {"metric": {}, "value": [0, "0"]}])
    assert has_value([{"metric": {}, "values": [[0, "NaN"], [1, "2.5"]]}])
