"""`python -m chaos slo export`: every ready experiment's SLOs as OpenSLO v1 documents that
validate against OpenSLO's JSON Schema (vendored in tests/unit/data/openslo_v1, see its
README), with the objectives and the PromQL of the project's own queries, next to the
Prometheus rules; what has no OpenSLO form is left out with a line saying why."""

from __future__ import annotations

import glob
import json
import math
import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from chaos import cli
from chaos.slo.openslo import SAMPLE_WINDOW_S, dns_label, openslo_documents, unique_labels
from chaos.slo.queries import BACKENDS, availability_query, latency_query, requests_query
from chaos.slo.spec import Availability, Latency, PromQL, Recovery
from chaos.spec.loading import load_experiment

EXPERIMENTS = sorted(glob.glob(os.path.join(cli.EXPERIMENTS_DIR, "*.yaml")))
SCHEMAS = Path(__file__).parent / "data" / "openslo_v1"
RFC1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _validator() -> Draft7Validator:
    docs = [json.loads(p.read_text()) for p in sorted(SCHEMAS.rglob("*.schema.json"))]
    registry: Registry = Registry().with_resources(
        (d["$id"], Resource(contents=d, specification=DRAFT7)) for d in docs)
    main = next(d for d in docs if d["$id"].endswith("/v1/openslo.schema.json"))
    return Draft7Validator(main, registry=registry)


VALIDATOR = _validator()


def export(tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, *extra: str) -> tuple[list[dict], dict, str]:
    assert cli.main(["slo", "export", path, "-o", str(tmp_path), *extra]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}/openslo.yaml\n{tmp_path}/prometheus-rules.yaml\n" in out  # the paths, printed
    docs = list(yaml.safe_load_all((tmp_path / "openslo.yaml").read_text()))
    rules = yaml.safe_load((tmp_path / "prometheus-rules.yaml").read_text())
    return docs, rules, out


def errors_of(doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


@pytest.mark.parametrize("backend", ["serve_core", "ray_serve"])
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: os.path.basename(p))
def test_every_experiment_exports_valid_openslo_and_rules(tmp_path, capsys, path, backend):
    exp = load_experiment(path, backend=backend)
    docs, rules, out = export(tmp_path, capsys, path, "--backend", backend)
    assert [d["kind"] for d in docs[:2]] == ["DataSource", "Service"]
    for doc in docs:
        assert errors_of(doc) == [], (doc["metadata"]["name"], errors_of(doc))
        assert doc["apiVersion"] == "openslo/v1" and RFC1123_LABEL.fullmatch(doc["metadata"]["name"])
    slos = [d for d in docs if d["kind"] == "SLO"]
    names = [d["metadata"]["name"] for d in slos] + [d["spec"]["indicator"]["metadata"]["name"] for d in slos]
    assert all(RFC1123_LABEL.fullmatch(n) for n in names) and len(set(names)) == len(names)
    declared = exp.steady_state.slos
    left = [s for s in declared if isinstance(s, Recovery) or (isinstance(s, PromQL) and s.op == "==")]
    assert len(slos) == len(declared) - len(left)
    for s in left:
        assert f"left out SLO {s.name!r} ({s.kind}):" in out
    for doc in slos:
        spec = doc["spec"]
        assert spec["service"] == docs[1]["metadata"]["name"] and spec["budgetingMethod"] == "Occurrences"
        assert spec["timeWindow"] == [{"duration": f"{math.ceil(exp.run_s / 60)}m", "isRolling": True}]
        assert doc["metadata"]["annotations"]["backend"] == backend
    assert rules["groups"][0]["rules"], "the Prometheus rules are written too"


def test_availability_and_latency_match_the_experiment_and_the_project_queries(tmp_path, capsys):
    path = os.path.join(cli.EXPERIMENTS_DIR, "replica_kills.yaml")
    exp = load_experiment(path)
    docs, _, out = export(tmp_path, capsys, path)
    by_name = {d["metadata"]["displayName"]: d for d in docs if d["kind"] == "SLO"}
    avail, latency = (s for s in exp.steady_state.slos if not isinstance(s, Recovery))
    assert isinstance(avail, Availability) and isinstance(latency, Latency)
    b = BACKENDS[exp.backend]

    a = by_name[avail.name]["spec"]
    assert a["objectives"] == [{"displayName": "availability >= 0.999", "target": avail.objective}]
    ratio = a["indicator"]["spec"]["ratioMetric"]
    good, total = (ratio[k]["metricSource"]["spec"]["query"] for k in ("good", "total"))
    assert ratio["counter"] is True and set(ratio) == {"counter", "good", "total"}
    assert good == 'sum(serve_core_http_requests_total{status=~"2.."})'
    # The same series the run's availability query counts, as raw counters.
    assert good.removeprefix("sum(").removesuffix(")") + "[" in availability_query(b, 30)
    assert total.removeprefix("sum(").removesuffix(")") + "[" in requests_query(b, 30)

    lat = by_name[latency.name]["spec"]
    (objective,) = lat["objectives"]
    assert (objective["op"], objective["value"]) == ("lte", latency.threshold_ms) and 0 < objective["target"] < 1
    query = lat["indicator"]["spec"]["thresholdMetric"]["metricSource"]["spec"]["query"]
    assert query == latency_query(b, latency.percentile, SAMPLE_WINDOW_S)
    assert "left out SLO 'recovery' (recovery): recovery time is measured from each injected fault" in out


def test_routes_and_backends_follow_the_project_queries():
    slos = [Availability(objective=0.99, route="/api"), Availability(name="all", objective=0.9)]
    export_ = openslo_documents(slos, "ray_serve", service="x", window_s=600)
    on_route, every = (d["spec"]["indicator"]["spec"]["ratioMetric"] for d in export_.documents[2:])
    assert on_route["total"]["metricSource"]["spec"]["query"] == 'sum(ray_serve_num_http_requests_total{route="/api"})'
    assert every["good"]["metricSource"]["spec"]["query"] == (
        'sum(ray_serve_num_http_requests_total{route!~"/-/.*",status_code=~"2.."})')  # health checks left out
    assert export_.documents[2]["spec"]["timeWindow"][0]["duration"] == "10m"


def test_promql_slos_keep_their_comparison_and_equality_is_left_out():
    slos = [PromQL(name="share", query="min(x[{window}])", op=">=", threshold=0.5),
            PromQL(name="exact", query="y", op="==", threshold=0)]
    got = openslo_documents(slos, "serve_core", service="x", window_s=60)
    (doc,) = [d for d in got.documents if d["kind"] == "SLO"]
    assert doc["spec"]["objectives"][0] | {"target": None} == {"displayName": "min(x[{window}]) >= 0.5", "op": "gte",
                                                                "value": 0.5, "target": None}
    assert doc["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"]["spec"]["query"] == "min(x[60s])"
    assert got.left_out == ["left out SLO 'exact' (promql): its comparison '==' has no OpenSLO operator "
                            "(lt, lte, gt, gte)"]


def test_the_schema_bites():
    docs = openslo_documents([Availability(objective=0.999)], "serve_core", service="s", window_s=90).documents
    slo = docs[2]
    assert errors_of(slo) == []
    assert errors_of({**slo, "metadata": {"name": "Not_A_Label"}})
    assert errors_of({**slo, "spec": {**slo["spec"], "timeWindow": [{"duration": "90s", "isRolling": True}]}})
    assert errors_of({**slo, "spec": {**slo["spec"], "objectives": [{"target": 1.0}]}})


def test_a_bad_experiment_path_is_named(capsys, tmp_path):
    assert cli.main(["slo", "export", "chaos/experiments/no_such.yaml", "-o", str(tmp_path)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "invalid file='chaos/experiments/no_such.yaml': no such file; check the path" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_directory_is_named(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = os.path.join(cli.EXPERIMENTS_DIR, "ci_smoke.yaml")
    assert cli.main(["slo", "export", path, "-o", str(blocker)]) == cli.EXIT_ERROR
    assert f"cannot write into -o {str(blocker)!r}" in capsys.readouterr().err


@given(st.text(max_size=200))
def test_names_are_rfc1123_labels(text):
    assert RFC1123_LABEL.fullmatch(dns_label(text))


@given(st.lists(st.text(alphabet="aA_-.0", max_size=70), max_size=12))
def test_unique_labels_are_distinct_labels(texts):
    labels = unique_labels(texts)
    assert len(set(labels)) == len(labels) and all(RFC1123_LABEL.fullmatch(x) for x in labels)
