"""Many controller restarts on one cluster, as a long chaos campaign brings: each new controller
adopts the proxies and replicas and watches them again. A killed controller's watch calls keep
running in those actors (Ray does not cancel an actor task when its caller dies); unbounded,
they used up a proxy's eight threads after eight restarts, and the ninth controller's `ready`
call never ran: the proxy stayed STARTING for good and deploys waited for it."""

import os
import signal

import ray

import serve_core as serve
from serve_core import ray_seam
from tests.integration import apps
from tests.integration.conftest import get
from tests.waiting import wait_for

RESTARTS = 10  # more than a proxy actor's max_concurrency (8)


def controller_pid():
    return ray_seam.get_controller().pid(timeout=10)


def settled(old_pid):
    """A new controller answers, and it sees every proxy HEALTHY and the app RUNNING."""
    if controller_pid() == old_pid:
        return False
    st = serve.status()
    return (bool(st.proxies) and all(p["state"] == "HEALTHY" for p in st.proxies.values())
            and st.applications["restarts"].status == "RUNNING")


def test_proxies_and_replicas_are_watched_again_after_every_restart(serve_core_app):
    serve.run(apps.hello.bind(), name="restarts", route_prefix="/restarts")
    for i in range(RESTARTS):
        pid = controller_pid()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda pid=pid: settled(pid), 60, f"controller restart {i + 1} of {RESTARTS} settled",
                 interval_s=0.5, ignore=(Exception,), detail=lambda: serve.status().proxies)
    # Every proxy still has threads for its own calls, and the app still answers and deploys.
    for name in ray_seam.actor_names("SERVE_CORE_PROXY"):
        assert ray.get(ray_seam.get_actor(name).ready.remote(), timeout=15)["port"]
    assert get("/restarts").status_code == 200
    serve.run(apps.hello.bind(), name="restarts-after", route_prefix="/restarts-after")
    assert get("/restarts-after").status_code == 200
