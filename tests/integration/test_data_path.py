"""The request path does not go through Ray: no task per request, replicas apart."""

import time

import pytest
import ray
import requests
from ray.util.state import summarize_tasks

import serve_core as serve
from tests.integration import apps
from tests.integration.conftest import BASE, shared_app


def task_count():
    time.sleep(2.5)  # task events reach the GCS in batches about once a second
    address = ray._private.worker.global_worker.node.address  # this cluster, not another on the machine
    summary = summarize_tasks(address=address, raise_on_missing_output=False)["cluster"]["summary"]
    return sum(sum(v["state_counts"].values()) for v in summary.values())


@pytest.fixture(scope="module")
def noop_app(serve_instance):
    """One Noop at /noop for both tests: they only send it requests."""
    with shared_app(apps.Noop.bind(), "noop", "/noop") as handle:
        yield handle


def test_no_ray_task_per_request(serve_core_app, noop_app):
    h = noop_app
    s = requests.Session()
    s.get(BASE + "/noop")
    h.pid.remote().result()
    before = task_count()
    for _ in range(400):
        assert s.get(BASE + "/noop").status_code == 200
    for _ in range(100):
        h.pid.remote().result()
    after = task_count()
    # Long polls and health checks add a handful; 500 requests would add 500.
    assert after - before < 40, f"{after - before} Ray tasks for 500 requests"


def test_replica_runs_in_its_own_process(serve_core_app, noop_app):
    h = noop_app
    st = serve.status()
    replica_pid = h.pid.remote().result()
    proxy_pids = {p["pid"] for p in st.proxies.values()}
    assert replica_pid not in proxy_pids
    assert st.applications["noop"].deployments["Noop"].replicas[0]["pid"] == replica_pid
