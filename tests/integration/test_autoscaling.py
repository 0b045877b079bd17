"""Queue-based autoscaling on a real cluster: from zero, out under load, back to zero."""

import concurrent.futures as cf
import os
import time

import serve_core as serve
from tests.integration import apps
from tests.integration.conftest import get
from tests.waiting import wait_for


def replicas(app="elastic"):
    return serve.status().applications[app].deployments["Elastic"].replicas


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_scale_from_zero_out_and_back_to_zero(serve_core_app):
    serve.run(apps.Elastic.bind(), name="elastic", route_prefix="/elastic")
    assert replicas() == []  # min_replicas=0: nothing runs until a request comes

    r = get("/elastic", timeout=30)  # held by the proxy until the first replica is ready
    assert r.status_code == 200
    first_pid = r.json()

    # Six requests of 1 s each against one replica that runs two at a time: demand is
    # six times the target, so the fast path scales out at once (max_replicas=3).
    with cf.ThreadPoolExecutor(6) as pool:
        futs = [pool.submit(get, "/elastic?s=1", timeout=30) for _ in range(6)]
        wait_for(lambda: len(replicas()) >= 2, 20, "scale-out under load", detail=replicas)
        results = [f.result() for f in futs]
    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    pids = {r.json() for r in results} | {first_pid}

    wait_for(lambda: replicas() == [], 40, "scale to zero", detail=lambda: f"still running: {replicas()}")
    wait_for(lambda: not any(alive(p) for p in pids), 20, "every replica process gone after scale-to-zero",
             detail=lambda: f"alive: {[p for p in pids if alive(p)]}")
    assert get("/elastic", timeout=30).status_code == 200  # and back from zero again


def test_requests_at_zero_are_held_up_to_the_queue_bound_the_rest_get_503(serve_core_app):
    serve.run(apps.SlowStart.bind(), name="slow", route_prefix="/slow")
    assert serve.status().applications["slow"].deployments["SlowStart"].replicas == []
    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: get("/slow", timeout=30), range(6)))
    codes = sorted(r.status_code for r in results)
    # max_queued_requests=3: three are held until the replica is ready, the rest are refused
    # at once with Retry-After (nothing dropped below the bound, nothing piled above it).
    assert codes == [200, 200, 200, 503, 503, 503], [(r.status_code, r.text[:100]) for r in results]
    refused = [r for r in results if r.status_code == 503]
    assert all(r.headers.get("retry-after") for r in refused)
    assert len({r.json() for r in results if r.status_code == 200}) == 1


def test_a_controller_restarted_under_load_does_not_scale_down(serve_core_app):
    import signal

    from serve_core import ray_seam
    from tests.integration.conftest import BASE
    from tests.integration.load import OpenLoop

    serve.run(apps.Loaded.bind(), name="busy", route_prefix="/busy")

    def running():
        return len(serve.status().applications["busy"].deployments["Loaded"].replicas)

    # 30 requests/s of 0.1 s each: ~3 ongoing, target 1 per replica -> 3 or 4 replicas.
    with OpenLoop(BASE + "/busy", rate=30) as load:
        wait_for(lambda: running() >= 3, 30, "scale-out to 3 replicas", detail=lambda: f"running: {running()}")
        scaled = running()
        controller = ray_seam.get_controller()
        os.kill(controller.pid(), signal.SIGKILL)
        counts = []
        deadline = time.monotonic() + 8  # longer than downscale_delay_s and the look-back
        while time.monotonic() < deadline:
            try:
                counts.append(running())
            except Exception:
                pass  # the controller is restarting
            time.sleep(0.25)
    assert load.result.failed == [], load.result.failed[:5]
    # The restarted controller lost the demand history: it must not take that for no demand.
    assert counts and min(counts) >= 3, (scaled, counts)
