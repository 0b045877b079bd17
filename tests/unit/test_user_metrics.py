"""User-defined metrics with Ray Serve's API, as Prometheus metrics tagged by replica."""

import prometheus_client
import pytest

from serve_core import context
from serve_core import metrics as user_metrics  # where a renamed `ray.serve.metrics` import finds them


@pytest.fixture
def in_replica():
    context.set_replica_context(context.ReplicaContext("shop", "Pricer", "r-1", None))
    yield
    context._replica = None


def value(name, labels):
    return prometheus_client.REGISTRY.get_sample_value(name, labels)


def test_counter_gauge_histogram_carry_the_replica_tags(in_replica):
    c = user_metrics.Counter("um_test_requests", description="requests", tag_keys=("model",))
    c.set_default_tags({"model": "a"})
    c.inc()
    c.inc(2, tags={"model": "b"})
    g = user_metrics.Gauge("um_test_queue", tag_keys=("route",))
    token = context.request_context.set(context.RequestContext(route="/shop"))
    try:
        g.set(4)
    finally:
        context.request_context.reset(token)
    h = user_metrics.Histogram("um_test_latency", boundaries=[0.1, 1.0])
    h.observe(0.5)
    base = {"deployment": "Pricer", "replica": "r-1", "application": "shop"}
    assert value("um_test_requests_total", {**base, "model": "a"}) == 1
    assert value("um_test_requests_total", {**base, "model": "b"}) == 2
    assert value("um_test_queue", {**base, "route": "/shop"}) == 4
    assert value("um_test_latency_bucket", {**base, "le": "1.0"}) == 1
    assert c.info["tag_keys"] == ("deployment", "replica", "application", "model")


def test_same_name_twice_shares_the_metric_and_bad_use_is_explained(in_replica):
    a = user_metrics.Counter("um_test_shared")
    b = user_metrics.Counter("um_test_shared")
    a.inc()
    b.inc()
    assert value("um_test_shared_total", {"deployment": "Pricer", "replica": "r-1", "application": "shop"}) == 2
    with pytest.raises(TypeError, match="tuple"):
        user_metrics.Counter("um_test_bad", tag_keys=["x"])
    with pytest.raises(ValueError, match="reserved"):
        user_metrics.Counter("um_test_reserved", tag_keys=("replica",))
    with pytest.raises(ValueError, match="missing values"):
        user_metrics.Gauge("um_test_needs", tag_keys=("k",)).set(1)
