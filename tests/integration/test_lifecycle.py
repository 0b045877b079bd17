"""Deploy, update, reconfigure, heal, drain, delete: the controller's job."""

import concurrent.futures as cf
import os
import time

import pytest
import ray

import serve_core as serve
from serve_core.errors import ConfigError, DeploymentFailedError
from tests.integration import apps
from tests.integration.conftest import get, in_flight
from tests.waiting import wait_for


def replica_states(app, dep):
    return serve.status().applications[app].deployments[dep].replica_states


def test_status_shows_apps_deployments_replicas(serve_core_app):
    serve.run(apps.Counter.options(num_replicas=2).bind(), name="c", route_prefix="/c")
    st = serve.status()
    app = st.applications["c"]
    assert app.status == "RUNNING" and app.route_prefix == "/c"
    dep = app.deployments["Counter"]
    assert dep.status == "HEALTHY" and dep.replica_states == {"RUNNING": 2}
    assert all(p["state"] == "HEALTHY" for p in st.proxies.values())


def test_user_config_reconfigures_in_place(serve_core_app):
    serve.run(apps.Weighted.bind(), name="w", route_prefix="/w")
    first = get("/w").json()
    assert first["weight"] == 1 and first["reconfigures"] == 1  # called on start
    serve.run(apps.Weighted.options(user_config={"weight": 7}).bind(), name="w", route_prefix="/w")
    second = get("/w").json()
    assert second["weight"] == 7 and second["reconfigures"] == 2
    assert second["pid"] == first["pid"]  # same replica process


def test_code_change_rolls_replicas_without_errors(serve_core_app):
    serve.run(apps.Counter.options(num_replicas=2).bind(0), name="c", route_prefix="/c")
    old = {get("/c").json()["pid"] for _ in range(20)}
    stop = time.monotonic() + 1e9
    codes = []

    def load():
        while time.monotonic() < stop:
            codes.append(get("/c").status_code)
            time.sleep(0.01)

    with cf.ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(load) for _ in range(2)]
        serve.run(apps.Counter.options(num_replicas=2).bind(100), name="c", route_prefix="/c")
        time.sleep(1.0)
        stop = time.monotonic()
        for f in futs:
            f.result()
    new = {get("/c").json()["pid"] for _ in range(20)}
    assert old.isdisjoint(new) and len(codes) > 20
    assert set(codes) == {200}, f"failed during the rolling update: {sorted(set(codes))}"


def test_a_failed_rollout_rolls_back_and_the_old_version_serves_throughout(serve_core_app):
    serve.run(apps.Versioned.options(num_replicas=2).bind("v1"), name="v", route_prefix="/v")
    pids = {get("/v").json()["pid"] for _ in range(20)}
    stop = time.monotonic() + 1e9
    answers = []

    def load():
        while time.monotonic() < stop:
            r = get("/v")
            answers.append((r.status_code, r.json()["version"] if r.status_code == 200 else r.text))
            time.sleep(0.01)

    with cf.ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(load) for _ in range(2)]
        for bad, why in [({"fail_start": True}, "cannot load its weights"), ({"unhealthy": True}, "is unhealthy")]:
            with pytest.raises(DeploymentFailedError) as e:
                serve.run(apps.Versioned.options(num_replicas=2).bind("v2", **bad), name="v", route_prefix="/v")
            assert "rolled back to the previous version" in str(e.value) and why in str(e.value)
        stop = time.monotonic()
        for f in futs:
            f.result()
    assert len(answers) > 20 and set(answers) == {(200, "v1")}, sorted(set(answers))[:5]
    assert {get("/v").json()["pid"] for _ in range(20)} == pids  # the old replicas were never stopped
    serve.run(apps.Versioned.options(num_replicas=2).bind("v3"), name="v", route_prefix="/v")
    assert {get("/v").json()["version"] for _ in range(10)} == {"v3"}
    assert serve.status().applications["v"].message == ""


def test_scaling_replicas_up_and_down(serve_core_app):
    serve.run(apps.Counter.options(num_replicas=1).bind(), name="c", route_prefix=None)
    serve.run(apps.Counter.options(num_replicas=3).bind(), name="c", route_prefix=None)
    assert serve.status().applications["c"].deployments["Counter"].replica_states == {"RUNNING": 3}
    serve.run(apps.Counter.options(num_replicas=1).bind(), name="c", route_prefix=None)
    wait_for(lambda: replica_states("c", "Counter") == {"RUNNING": 1}, 20, "scaled down to one running replica",
             detail=lambda: replica_states("c", "Counter"))


def test_failed_health_check_replaces_replica(serve_core_app):
    h = serve.run(apps.Flaky.bind(), name="f", route_prefix=None)
    bad_pid = h.make_unhealthy.remote().result()
    wait_for(lambda: h.remote().result() != bad_pid, 30, "an answer from a replica other than the unhealthy one")
    # The replacement may answer before the old replica has finished stopping.
    wait_for(lambda: replica_states("f", "Flaky") == {"RUNNING": 1}, 30, "the unhealthy replica stopped",
             detail=lambda: replica_states("f", "Flaky"))


def test_killed_replica_is_replaced(serve_core_app):
    h = serve.run(apps.Counter.bind(), name="c", route_prefix=None)
    pid = h.pid.remote().result()
    os.kill(pid, 9)
    wait_for(lambda: _pid_or_none(h) not in (None, pid), 30, "an answer from the replacement replica")


def _pid_or_none(h):
    try:
        return h.pid.remote().result(timeout_s=2)
    except Exception:
        return None


def test_graceful_drain_finishes_inflight(serve_core_app):
    serve.run(apps.Draining.bind(), name="d", route_prefix="/d")
    with cf.ThreadPoolExecutor(3) as pool:
        futs = [pool.submit(get, "/d?s=1.5") for _ in range(3)]
        wait_for(lambda: in_flight("d") == 3, 1.4, "three requests running at the replica")
        serve.delete("d")  # waits for the drain
        results = [f.result() for f in futs]
    assert [r.status_code for r in results] == [200, 200, 200]
    assert all(r.text == "finished" for r in results)


def test_constructor_failure_is_deploy_failed(serve_core_app):
    with pytest.raises(DeploymentFailedError) as e:
        serve.run(apps.Broken.bind(), name="broken", route_prefix="/broken")
    assert "cannot load weights" in str(e.value)
    assert serve.status().applications["broken"].status == "DEPLOY_FAILED"


def test_fractional_gpus_share_one_device(serve_core_app):
    serve.run(apps.HalfGpu.bind(), name="gpu", route_prefix="/gpu")
    seen = {}
    for _ in range(30):
        r = get("/gpu").json()
        seen[r["pid"]] = tuple(r["gpus"])
    assert len(seen) == 2 and all(len(g) == 1 for g in seen.values())
    avail = ray.available_resources().get("GPU", 0)
    assert avail <= 1.0 + 1e-6  # two half-GPU replicas hold one GPU between them


def test_bad_options_and_targets_fail_clearly(serve_core_app):
    with pytest.raises(ConfigError) as e:
        apps.Counter.options(max_ongoing_requests=0)
    assert "max_ongoing_requests" in str(e.value)
    with pytest.raises(ConfigError, match="bind"):
        serve.run(apps.Counter)
    with pytest.raises(ConfigError, match="must start with"):
        serve.run(apps.Counter.bind(), route_prefix="counter")


def test_delete_removes_route_and_replicas(serve_core_app):
    serve.run(apps.hello.bind(), name="fn", route_prefix="/hello")
    serve.delete("fn")
    assert "fn" not in serve.status().applications
    wait_for(lambda: get("/hello").status_code == 404, 5, "404 for the deleted route")
