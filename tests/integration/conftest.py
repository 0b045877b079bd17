"""One real Ray cluster for the whole tier; serve_core listens on PORT so Ray Serve
can use its default 8000 in the compatibility tests."""

import os

import pytest
import ray
import requests

import serve_core as serve

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


@pytest.fixture
def serve_core_app(serve_instance):
    """serve_core running; every application a test deployed is deleted after it."""
    yield serve_instance
    for name in list(serve.status().applications):
        serve.delete(name)


def get(path, **kw):
    return requests.get(BASE + path, timeout=kw.pop("timeout", 10), **kw)


def post(path, **kw):
    return requests.post(BASE + path, timeout=kw.pop("timeout", 10), **kw)
