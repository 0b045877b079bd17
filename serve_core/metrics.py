"""Prometheus metrics of every serve_core process, and the endpoint that exposes them; and,
as ``ray.serve.metrics`` does, the Counter, Gauge and Histogram user code defines
(``serve_core.user_metrics``).

Names are listed in README.md. Label children are cached per label set because
``labels()`` costs more than the increment on the hot path.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import prometheus_client as prom
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server

from serve_core.user_metrics import Counter, Gauge, Histogram

__all__ = ["Counter", "Gauge", "Histogram"]  # the public names: Ray Serve's user metrics

# Fine enough near the fast end that p99 is known within about 10% (see issue 4).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 60.0,
)

HTTP_REQUESTS = prom.Counter(
    "serve_core_http_requests_total", "HTTP requests answered by a proxy.",
    ["route", "application", "method", "status"],
)
HTTP_LATENCY = prom.Histogram(
    "serve_core_http_request_latency_seconds", "Proxy latency from request to last byte.",
    ["route", "application"], buckets=LATENCY_BUCKETS,
)
PROXY_ONGOING = prom.Gauge("serve_core_proxy_ongoing_requests", "HTTP requests in progress at this proxy.")
REPLICA_REQUESTS = prom.Counter(
    "serve_core_replica_requests_total", "Requests a replica finished.",
    ["application", "deployment", "replica", "outcome"],
)
REPLICA_LATENCY = prom.Histogram(
    "serve_core_replica_processing_latency_seconds", "User code time per request at the replica.",
    ["application", "deployment", "replica"], buckets=LATENCY_BUCKETS,
)
REPLICA_ONGOING = prom.Gauge(
    "serve_core_replica_ongoing_requests", "Requests running at the replica.",
    ["application", "deployment", "replica"],
)
REPLICA_REJECTED = prom.Counter(
    "serve_core_replica_rejected_total", "Requests a replica refused because it was full or draining.",
    ["application", "deployment", "replica"],
)
ROUTER_QUEUED = prom.Gauge(
    "serve_core_router_queued_requests", "Requests waiting at a caller for a replica with room.",
    ["application", "deployment"],
)
ROUTER_RETRIES = prom.Counter(
    "serve_core_router_retries_total", "Requests a caller sent again to another replica.",
    ["application", "deployment", "reason"],
)
DEPLOYMENT_REPLICAS = prom.Gauge(
    "serve_core_deployment_replicas", "Replicas per deployment by state (controller view).",
    ["application", "deployment", "state"],
)
DEPLOYMENT_TARGET = prom.Gauge(
    "serve_core_deployment_target_replicas", "Target replica count per deployment.",
    ["application", "deployment"],
)
AUTOSCALER_DEMAND = prom.Gauge(
    "serve_core_autoscaler_demand", "Requests running plus queued, summed over callers (controller view).",
    ["application", "deployment"],
)
AUTOSCALER_DESIRED = prom.Gauge(
    "serve_core_autoscaler_desired_replicas", "Replicas the autoscaling policy wants.",
    ["application", "deployment"],
)
AUTOSCALER_DECISIONS = prom.Counter(
    "serve_core_autoscaler_decisions_total", "Changes of the replica target by the autoscaler, by reason.",
    ["application", "deployment", "reason"],
)
CONTROL_LOOP = prom.Histogram(
    "serve_core_controller_loop_duration_seconds", "Time of one reconcile pass.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CANARY_SHARE = prom.Gauge("serve_core_canary_share", "Share of traffic a canary gets (0 once rolled back).", ["canary"])
CANARY_ROLLBACKS = prom.Counter("serve_core_canary_rollbacks_total", "Canaries rolled back for breaking their SLO.", ["canary"])
ROLLBACKS = prom.Counter(
    "serve_core_rollbacks_total", "Rollouts rolled back because their new replicas kept failing to start.",
    ["application", "deployment"],
)
AUTH_FAILURES = prom.Counter(
    "serve_core_auth_failures_total",
    "Direct connections refused because the peer did not prove it holds the cluster secret.",
    ["side"],
)
HEALTH_FAILURES = prom.Counter(
    "serve_core_health_check_failures_total", "Failed replica health checks.",
    ["application", "deployment"],
)


@lru_cache(maxsize=4096)
def child(metric: Any, *labels: str) -> Any:
    return metric.labels(*labels)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


def serve_metrics(host: str) -> int:
    """Expose this process's metrics on an ephemeral port; return the port."""
    server, _ = start_http_server(0, addr=host)
    return int(server.server_port)
