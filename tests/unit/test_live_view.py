"""The live view without a browser: what it makes of journals, series and a cluster status
(chaos/live/view.py, pure), the runs on disk and their runners (sources.py), and the server's
routes, token and events (server.py, through Starlette's test client: no socket)."""

import copy
import json
import os
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from chaos.live import server, view
from chaos.live.sources import Runs, runner_alive

DATA = os.path.join(os.path.dirname(__file__), "data")
with open(os.path.join(DATA, "chaos_journal.json")) as f:
    FINISHED = json.load(f)


def running_copy():
    j = copy.deepcopy(FINISHED)
    j.update(end=None, verdict=None, reasons=[], runner={"pid": os.getpid(), "host": socket.gethostname()})
    j["faults"] = j["faults"][:1]
    j["faults"][0].update(ok=None, returned=None)
    return j


def test_a_running_run_shows_its_clock_injected_and_planned_faults_and_no_verdict():
    j = running_copy()
    v = view.run_view("r1", j, runner_alive(j), now=j["load_start"] + 30)
    assert v["state"] == view.RUNNING and v["verdict"] is None and v["elapsed_s"] == pytest.approx(30)
    assert v["duration_s"] == 90 and v["objective"] == 0.999
    assert [f["id"] for f in v["faults"]] == ["f0"] and v["faults"][0]["ok"] is None
    assert [p["at_s"] for p in v["planned"]] == [p["at_s"] for p in FINISHED["plan"]]


def test_a_finished_run_has_its_verdict_and_a_dead_runner_without_one_says_so():
    v = view.run_view("r1", FINISHED, False, now=0)
    assert v["state"] == "passed" and v["verdict"] == "passed" and all(f["ok"] for f in v["faults"])
    j = running_copy()
    j["runner"]["pid"] = 2 ** 22 + 12345  # no such process
    assert not runner_alive(j) and view.run_view("r1", j, runner_alive(j), 0)["state"] == view.STOPPED
    j.pop("runner")  # a journal from before runners recorded themselves: judged by its age
    assert runner_alive(j, written_at=100.0, now=150.0) and not runner_alive(j, written_at=100.0, now=10_000.0)


def series(points_by_name):
    return {name: {"query": "q", "error": None, "series": [{"labels": labels, "points": pts} for labels, pts in lines]}
            for name, lines in points_by_name.items()}


def test_the_timeline_is_in_seconds_since_the_load_started_with_replicas_per_deployment():
    t0 = 1000.0
    s = series({"requests": [({}, [[1001, 100], [1002, 100]])], "errors": [({}, [[1001, 0], [1002, 1]])],
                "p99": [({}, [[1001, 12.5], [1002, None]])],
                "replicas": [({"application": "default", "deployment": "Work"}, [[1001, 2], [1002, 1]])]})
    tl = view.timeline(s, t0, 0.99, 1.0)
    assert tl["requests"] == [[1.0, 100.0], [2.0, 100.0]] and tl["p99"] == [[1.0, 12.5], [2.0, None]]
    assert tl["replicas"] == {"default/Work": [[1.0, 2.0], [2.0, 1.0]]}
    assert tl["budget"] == [[1.0, 0.0], [2.0, 0.5]]  # 1 of 200 failed; 1% allows 2
    broken = {"requests": {"query": "q", "error": "PrometheusUnavailable: down", "series": []}}
    assert view.timeline(broken, t0, None, 1.0)["errors_read"] == {"requests": "PrometheusUnavailable: down"}


@given(st.lists(st.tuples(st.just(0.0) | st.floats(0.001, 500), st.floats(0, 1)), max_size=40), st.floats(0.9, 0.99999))
def test_the_budget_burned_is_the_failed_share_over_the_allowed_share(steps, objective):
    requests = [(float(i), rate) for i, (rate, _) in enumerate(steps)]
    errors = [(float(i), rate * share) for i, (rate, share) in enumerate(steps)]
    burned = view.budget_burned(requests, errors, objective, 1.0)
    sent = sum(r for r, _ in steps)
    if sent > 0:
        failed = sum(r * s for r, s in steps)
        assert burned[-1][1] == pytest.approx(failed / ((1 - objective) * sent))
    assert all(b >= 0 for _, b in burned)


def test_the_cluster_panel_lists_nodes_proxies_and_each_replica_with_state_node_and_version():
    doc = {"nodes": [{"name": "w1", "role": "worker", "address": "10.77.0.3", "alive": True, "cpus": 2.0}],
           "proxies": [{"node": "w1", "state": "HEALTHY", "address": "10.77.0.3:8000"}],
           "applications": {"default": {"status": "RUNNING", "route_prefix": "/", "deployments": {"Work": {
               "status": "HEALTHY", "target": 1, "replicas": {"RUNNING": 1},
               "replica_list": [{"id": "ab12", "state": "RUNNING", "node": "w1", "version": "v1", "pid": 7}]}}}}}
    c = view.cluster_view(doc)
    assert c["nodes"][0]["name"] == "w1" and c["proxies"][0]["state"] == "HEALTHY" and c["error"] is None
    assert c["applications"][0]["deployments"][0]["replicas"][0] == doc["applications"]["default"]["deployments"][
        "Work"]["replica_list"][0]
    assert view.cluster_view(None, "TargetError: cannot reach cluster")["error"] == "TargetError: cannot reach cluster"


def write_run(root, run_id, journal, report=False):
    os.makedirs(root / run_id)
    (root / run_id / "journal.json").write_text(json.dumps(journal))
    if report:
        (root / run_id / "report.html").write_text("<html>report</html>")


@pytest.fixture
def runs_dir(tmp_path):
    write_run(tmp_path, "ci_smoke-1", FINISHED, report=True)
    write_run(tmp_path, "ci_smoke-2", running_copy())
    os.utime(tmp_path / "ci_smoke-1" / "journal.json", (1, 1))  # the older one
    return tmp_path


def test_the_server_shows_the_newest_run_lists_the_rest_and_serves_only_report_files(runs_dir):
    live = server.Live(Runs(str(runs_dir)), None, None)
    client = TestClient(server.app(live))
    assert "<title>serve-core live</title>" in client.get("/").text
    state = client.get("/api/state").json()
    assert [r["id"] for r in state["runs"]] == ["ci_smoke-2", "ci_smoke-1"]
    assert state["run"]["id"] == "ci_smoke-2" and state["run"]["state"] == view.RUNNING
    assert state["runs"][1]["report"] == "runs/ci_smoke-1/report.html" and state["cluster"]["error"] == "no target given"
    assert client.get("/api/state", params={"run": "ci_smoke-1"}).json()["run"]["verdict"] == "passed"
    assert client.get("/runs/ci_smoke-1/report.html").text == "<html>report</html>"
    assert client.get("/runs/ci_smoke-2/report.html").status_code == 404  # not written yet
    assert client.get("/runs/ci_smoke-1/secrets.txt").status_code == 404
    assert client.get("/runs/..%2f..%2fetc/journal.json").status_code == 404


def test_events_send_the_state(runs_dir):
    live = server.Live(Runs(str(runs_dir)), None, None)
    with TestClient(server.app(live)) as client, client.stream("GET", "/api/events") as r:
        lines = r.iter_lines()
        assert next(lines) == "event: state"
        state = json.loads(next(lines).removeprefix("data: "))
        assert state["run"]["id"] == "ci_smoke-2"


def test_with_a_token_nothing_is_shown_without_it(runs_dir):
    client = TestClient(server.app(server.Live(Runs(str(runs_dir)), None, None), token="s3cret"), follow_redirects=False)
    assert client.get("/api/state").status_code == 401
    assert client.get("/", params={"token": "wrong"}).status_code == 401
    r = client.get("/", params={"token": "s3cret"})
    assert r.status_code == 303 and "token" not in r.headers["location"]
    assert client.get("/api/state").status_code == 200  # the cookie
    bare = TestClient(server.app(server.Live(Runs(str(runs_dir)), None, None), token="s3cret"))
    assert bare.get("/api/state", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_another_address_than_loopback_needs_a_token(monkeypatch, capsys):
    monkeypatch.delenv("SERVE_CORE_UI_TOKEN", raising=False)
    with pytest.raises(SystemExit) as e:
        server.main(["--host", "0.0.0.0", "--runs", "/nonexistent"])
    assert e.value.code == 2 and "SERVE_CORE_UI_TOKEN" in capsys.readouterr().err
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1") and not server.is_loopback("10.0.0.1")


def test_the_cluster_status_is_asked_for_only_while_someone_looks():
    import time as clock

    from chaos.live.sources import StatusWatcher

    asked = []
    watcher = StatusWatcher(lambda: asked.append(1) or {"nodes": []}, every_s=0.02, idle_s=0.2).start()
    try:
        clock.sleep(0.3)
        busy = len(asked)
        clock.sleep(0.3)  # nobody asked for the state since: no more status calls (one may have been under way)
        assert busy >= 2 and len(asked) <= busy + 1
        busy = len(asked)
        watcher.wanted()
        clock.sleep(0.1)
        assert len(asked) > busy
    finally:
        watcher.stop()
