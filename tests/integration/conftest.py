"""One real Ray cluster for the whole tier; serve_core listens on PORT so Ray Serve
can use its default 8000 in the compatibility tests."""

import contextlib
import os

import pytest
import ray
import requests

import serve_core as serve
from serve_core.control.controller import REPLICA_PREFIX

PORT = int(os.environ.get("SERVE_CORE_TEST_PORT", "8100"))  # another port lets two tiers run at once
BASE = f"http://127.0.0.1:{PORT}"
REQUEST_TIMEOUT_S = 5.0  # the fault tests count an answer later than 5 s as failed
MAX_BODY = 1024 * 1024
HEADER_TIMEOUT_S = 2.0
HTTP_OPTIONS = {
    "port": PORT, "request_timeout_s": REQUEST_TIMEOUT_S, "max_body_bytes": MAX_BODY,
    "header_timeout_s": HEADER_TIMEOUT_S,
}


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def ray_cluster():
    # Logical CPUs and GPUs: placement is what we test, not speed.
    ray.init(address="local", num_cpus=16, num_gpus=2, namespace="serve_core", log_to_driver=bool(os.environ.get("SERVE_CORE_TEST_LOGS")))
    yield
    try:
        serve.shutdown()
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def serve_instance(ray_cluster):
    serve.start(http_options=HTTP_OPTIONS)
    yield BASE


SHARED_APPS: set[str] = set()  # deployed once per module by shared_app, for tests that only read them


@pytest.fixture
def serve_core_app(serve_instance):
    """serve_core running; every application a test deployed is deleted after it (not the
    shared ones a module fixture deployed)."""
    yield serve_instance
    for name in list(serve.status().applications):
        if name not in SHARED_APPS:
            serve.delete(name)


@contextlib.contextmanager
def shared_app(app, name, route_prefix):
    """Deploy ``app`` once for a module's tests that only read it (a module-scoped fixture wraps
    this); it outlives each test's cleanup and is deleted when the module is done. A test that
    changes an application's state must deploy its own."""
    handle = serve.run(app, name=name, route_prefix=route_prefix)
    SHARED_APPS.add(name)
    try:
        yield handle
    finally:
        SHARED_APPS.discard(name)
        serve.delete(name)


def get(path, **kw):
    return requests.get(BASE + path, timeout=kw.pop("timeout", 10), **kw)


def post(path, **kw):
    return requests.post(BASE + path, timeout=kw.pop("timeout", 10), **kw)


def replica_actors(app, deployment=None):
    """The live replica actors of ``app`` (of one deployment if named), found by their Ray names."""
    prefix = f"{REPLICA_PREFIX}{app}#" + (f"{deployment}:" if deployment else "")
    return [ray.get_actor(a["name"], namespace=a["namespace"])
            for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]


def in_flight(app, deployment=None):
    """Requests running at ``app``'s replicas now: a test waits on this until its requests have
    reached the replicas, or have left them, instead of sleeping."""
    replicas = replica_actors(app, deployment)
    assert replicas, f"no replica actors of {app!r} {deployment or ''} (named {REPLICA_PREFIX}{app}#...)"
    return sum(ray.get([r.ongoing.remote() for r in replicas], timeout=10))
