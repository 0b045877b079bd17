"""Queue-based autoscaling on a real cluster: from zero, out under load, back to zero."""

import concurrent.futures as cf
import os
import time

import serve_core as serve
from tests.integration import apps
from tests.integration.conftest import get


def replicas(app="elastic"):
    return serve.status().applications[app].deployments["Elastic"].replicas


def wait_for(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


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
        assert wait_for(lambda: len(replicas()) >= 2, timeout=20), "no scale-out under load"
        results = [f.result() for f in futs]
    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    pids = {r.json() for r in results} | {first_pid}

    assert wait_for(lambda: replicas() == [], timeout=40), f"still running: {replicas()}"
    assert wait_for(lambda: not any(alive(p) for p in pids), timeout=20), "a replica process outlived scale-to-zero"
    assert get("/elastic", timeout=30).status_code == 200  # and back from zero again
