"""serve_core's own parts fail under load and nothing is lost."""

import os
import signal
import time

import ray

import serve_core as serve
from serve_core import ray_seam
from tests.integration import apps
from tests.integration.conftest import BASE, replica_actors
from tests.integration.load import OpenLoop
from tests.waiting import wait_for, wait_for_async


def replica_pids(app, dep):
    return {r["pid"] for r in serve.status().applications[app].deployments[dep].replicas}


def test_controller_killed_under_load_loses_nothing(serve_core_app):
    serve.run(apps.Work.bind(), name="work", route_prefix="/work")
    before = replica_pids("work", "Work")
    proxies_before = {p["pid"] for p in serve.status().proxies.values()}
    controller = ray_seam.get_controller()
    old_pid = controller.pid()
    with OpenLoop(BASE + "/work", rate=100) as load:
        time.sleep(1.0)
        os.kill(old_pid, signal.SIGKILL)
        wait_for(lambda: controller.pid(timeout=2) != old_pid, 30, "the controller restarted",
                 ignore=(Exception,))
        time.sleep(2.0)  # load goes on against the restarted controller
    r = load.result
    assert r.sent >= 300 and not r.failed, f"{len(r.failed)} of {r.sent} failed: {r.failed[:5]}"
    assert controller.pid() != old_pid
    assert replica_pids("work", "Work") == before  # re-adopted, not replaced
    assert {p["pid"] for p in serve.status().proxies.values()} == proxies_before
    # The restarted controller takes changes again.
    serve.run(apps.Work.options(num_replicas=3).bind(), name="work", route_prefix="/work")
    assert len(replica_pids("work", "Work")) == 3 and before < replica_pids("work", "Work")


def test_replica_killed_under_load_idempotent_requests_retried(serve_core_app):
    serve.run(apps.Work.bind(), name="work", route_prefix="/work")
    victim = sorted(replica_pids("work", "Work"))[0]
    retried = 'serve_core_router_retries_total{application="work",deployment="Work",reason="replica_died"}'
    before = metric(retried)
    # 50 ms of work at 100/s keeps about five requests inside the replicas.
    with OpenLoop(BASE + "/work?ms=50", rate=100) as load:
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)
        time.sleep(3.0)
    r = load.result
    assert r.sent >= 300 and not r.failed, f"{len(r.failed)} of {r.sent} failed: {r.failed[:5]}"
    wait_for(lambda: len(replica_pids("work", "Work") - {victim}) >= 2, 30, "a replacement for the killed replica",
             detail=lambda: replica_pids("work", "Work"))
    assert victim not in replica_pids("work", "Work") and len(replica_pids("work", "Work")) == 2
    assert metric(retried) > before, "no request was retried after the replica had accepted it"


def metric(series):
    import requests

    for line in requests.get(BASE + "/-/metrics", timeout=5).text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_redeploy_and_downscale_under_load_lose_nothing(serve_core_app):
    serve.run(apps.Work.bind(), name="work", route_prefix="/work")
    first = replica_pids("work", "Work")
    with OpenLoop(BASE + "/work?ms=20", rate=100) as load:
        time.sleep(1.0)
        # A new version with fewer replicas: Ray Serve lost 36% of requests here.
        serve.run(apps.Work.options(num_replicas=1, max_ongoing_requests=20).bind(), name="work", route_prefix="/work")
        time.sleep(1.0)
        serve.run(apps.Work.options(num_replicas=3, max_ongoing_requests=20).bind(), name="work", route_prefix="/work")
        serve.run(apps.Work.options(num_replicas=1, max_ongoing_requests=20).bind(), name="work", route_prefix="/work")
        time.sleep(2.0)
    r = load.result
    assert r.sent >= 400 and not r.failed, f"{len(r.failed)} of {r.sent} failed: {r.failed[:5]}"
    last = replica_pids("work", "Work")
    assert len(last) == 1 and last.isdisjoint(first)


def test_killed_proxy_comes_back_and_reports_health(serve_core_app):
    import requests

    serve.run(apps.Work.bind(), name="work", route_prefix="/work")
    (proxy,) = serve.status().proxies.values()
    os.kill(proxy["pid"], signal.SIGKILL)

    def healthy():
        r = requests.get(BASE + "/-/healthz", timeout=1)
        return r.status_code == 200 and r.text == "success"

    wait_for(healthy, 30, "the killed proxy back and healthy", interval_s=0.05, ignore=(requests.ConnectionError,))
    (new,) = serve.status().proxies.values()
    assert new["pid"] != proxy["pid"]
    assert requests.get(BASE + "/work", timeout=5).status_code == 200


def test_replica_killed_non_idempotent_requests_fail_fast_and_clearly(serve_core_app):
    serve.run(apps.Work.bind(), name="work", route_prefix="/work")
    victim = sorted(replica_pids("work", "Work"))[0]
    with OpenLoop(BASE + "/work?ms=50", rate=100, method="POST") as load:
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)
        time.sleep(3.0)
    r = load.result
    # POSTs the dead replica had accepted are not retried: a 502 naming the cause, at once.
    assert all(status == 502 and "died while handling a non-idempotent request" in body for _, status, body in r.failed), r.failed[:5]
    assert r.ok + len(r.failed) == r.sent  # every request was answered (none hung)
    assert len(r.failed) < r.sent // 10


def test_handle_calls_marked_idempotent_are_retried(serve_core_app):
    h = serve.run(apps.Work.bind(), name="work", route_prefix=None)
    import asyncio

    victim = sorted(replica_pids("work", "Work"))[0]
    (victim_actor,) = [a for a in replica_actors("work", "Work") if ray.get(a.pid.remote()) == victim]

    async def burst():
        calls = [h.options(idempotent=True).slow_pid.remote(0.3) for _ in range(20)]
        # Kill the replica once it runs some of the calls, so they must be retried elsewhere.
        await wait_for_async(lambda: victim_actor.ongoing.remote(), 5, "calls running at the replica to be killed")
        os.kill(victim, signal.SIGKILL)
        return await asyncio.gather(*calls)

    pids = asyncio.run(burst())
    assert len(pids) == 20 and victim not in pids  # those on the dead replica ran again elsewhere
