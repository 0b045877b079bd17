"""The four dashboards: serving overview, autoscaling, chaos and SLO, cluster.

Metric names are serve_core's (README.md, "Metrics"), the load generator's (loadgen/metrics.py)
and Ray's as its node exporters publish them in ray 2.60. The SLO panels call the chaos
package's query builders (``chaos/slo/queries.py``) and burn windows (``chaos/slo/alerts.py``), so a
dashboard shows exactly what a chaos run judges and what its alert rules would fire on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from chaos.slo.alerts import SHORT_RUN_WINDOWS, BurnWindow
from chaos.slo.queries import BACKENDS, Backend, availability_query, duration, error_ratio_query, latency_query
from chaos.slo.spec import Availability, Latency
from dashboards.grafana_model import Annotation, Dashboard, Panel, Query, Row, Variable

RATE = "$__rate_interval"
APP = 'application=~"$application"'
DEP = 'deployment=~"$deployment"'
RUNNING = 'state="RUNNING"'
NOT_2XX = 'status!~"2.."'
CPU = 'Name="CPU"'
USED = 'State="USED"'
# Ray's node gauges (CPU, memory, active nodes) come from its reporter agent every ~2.5 s and are
# missing from the scrapes in between; read the last value seen in this window instead of the
# instant value, so a panel has no holes.
RAY_GAUGE_WINDOW = "10s"
EVENT_WINDOW = "10s"  # an annotation marks a counter that rose within this window

# The SLOs the chaos dashboard is drawn for: those of chaos/experiments/ci_smoke.yaml.
AVAILABILITY = Availability(objective=0.999)
LATENCY = Latency(name="p99", percentile=99, threshold_ms=500)
LATENCY_ALERT_WINDOW_S = 60.0  # chaos.slo.alerts.alert_rules' default latency_window_s
BURN_WINDOWS: tuple[BurnWindow, ...] = SHORT_RUN_WINDOWS
SERVER: Backend = BACKENDS["serve_core"]
CLIENT: Backend = BACKENDS["loadgen"]
_SENTINEL_S = 86399.0  # a window no query uses, replaced by a Grafana variable


def sel(metric: str, *matchers: str) -> str:
    ms = [m for m in matchers if m]
    return f"{metric}{{{','.join(ms)}}}" if ms else metric


def rate(metric: str, *matchers: str, window: str = RATE) -> str:
    return f"rate({sel(metric, *matchers)}[{window}])"


def quantile(q: float, bucket: str, by: str, *matchers: str) -> str:
    return f"histogram_quantile({q:g}, sum by (le{', ' + by if by else ''}) ({rate(bucket, *matchers)}))"


def error_ratio_by(by: str, *matchers: str) -> str:
    """Non-2xx share of serve_core's HTTP answers per ``by``; 0 (not no data) for a group with no errors."""
    total = f"sum by ({by}) ({rate('serve_core_http_requests_total', *matchers)})"
    bad = f"sum by ({by}) ({rate('serve_core_http_requests_total', *matchers, NOT_2XX)})"
    return f"({bad} or {total} * 0) / {total}"


def ray_gauge(metric: str, *matchers: str, over: str = "last") -> str:
    return f"{over}_over_time({sel(metric, *matchers)}[{RAY_GAUGE_WINDOW}])"


def rose(selector: str, by: str, window: str = EVENT_WINDOW) -> str:
    """How much a counter rose within ``window`` per ``by``, counting a series that first appeared
    within it from 0 (``increase`` would miss it: Prometheus cannot see a counter's first rise)."""
    return f"sum by ({by}) ({selector} - ({selector} offset {window} or {selector} * 0))"


def at_window(build: Callable[[float], str], window: str) -> str:
    """A chaos query builder's PromQL over a Grafana window variable (``$__range``) instead of seconds."""
    token = f"[{duration(_SENTINEL_S)}]"
    expr = build(_SENTINEL_S)
    if token not in expr:
        raise ValueError(f"expected the window {token} in {expr!r}; the chaos query builder changed its form")
    return expr.replace(token, f"[{window}]")


def budget(slo: Availability = AVAILABILITY) -> float:
    return 1 - slo.objective


def burn_rate(b: Backend, window_s: float) -> str:
    """Error ratio over the window (chaos' ``error_ratio_query``, the alerts' recording rule) per unit of budget."""
    return f"({error_ratio_query(b, window_s)}) / {budget():.10g}"


def burn_alert_condition(b: Backend, w: BurnWindow) -> str:
    """chaos.slo.alerts' SLOErrorBudgetBurn fires when both windows' error ratios pass ``factor * budget``:
    the smaller of the two over that limit, which is above 1 exactly when the alert would fire."""
    long_q, short_q = error_ratio_query(b, w.long_s), error_ratio_query(b, w.short_s)
    return f"(({long_q}) < ({short_q}) or ({short_q})) / {w.factor * budget():.10g}"


def latency_alert_condition(b: Backend) -> str:
    """chaos.slo.alerts' SLOLatencyHigh: the percentile over its window over the threshold (fires above 1)."""
    return f"({latency_query(b, LATENCY.percentile, LATENCY_ALERT_WINDOW_S, LATENCY.route)}) / {LATENCY.threshold_ms:g}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 and seconds % 60 == 0 else duration(seconds)


def burn_windows_s() -> list[float]:
    return sorted({s for w in BURN_WINDOWS for s in (w.long_s, w.short_s)})


# --- annotations: faults and what they caused ------------------------------------------------

ACTOR_DIED = Annotation(
    name="Actor died (Ray)",
    expr=rose("ray_node_manager_unexpected_worker_failure_total", "NodeAddress, Name") + " > 0",
    metric="ray_node_manager_unexpected_worker_failure_total",
    title="{{Name}} died", text="on {{NodeAddress}}", tags=("NodeAddress",), color="red",
)
RETRIED = Annotation(
    name="Retried after a failure",
    expr=rose(sel("serve_core_router_retries_total", 'reason!="rejected"'), "application, deployment, reason") + " > 0",
    metric="serve_core_router_retries_total",
    title="{{reason}} retries", text="{{application}}/{{deployment}}", tags=("reason", "deployment"), color="orange",
)
CLIENT_ERRORS = Annotation(
    name="Client errors (load generator)",
    expr=rose(sel("loadgen_requests_total", 'status!~"2.."'), "route, status") + " > 0",
    metric="loadgen_requests_total",
    title="client saw {{status}}", text="on {{route}}", tags=("status",), color="purple",
)
DECISION = Annotation(
    name="Autoscaling decision",
    expr=rose("serve_core_autoscaler_decisions_total", "application, deployment, reason") + " > 0",
    metric="serve_core_autoscaler_decisions_total",
    title="{{reason}}", text="{{application}}/{{deployment}}", tags=("reason", "deployment"), color="blue",
)
ALERT_FIRING = Annotation(
    name="SLO alert firing",
    expr='ALERTS{alertstate="firing",alertname=~"SLO.+"}',
    metric="ALERTS",
    title="{{alertname}} {{slo}}", text="{{backend}} {{window}} {{severity}}", tags=("alertname", "slo"),
    color="dark-red",
)
FAULT_ANNOTATIONS = (ACTOR_DIED, RETRIED, CLIENT_ERRORS)

APPLICATION = Variable("application", "Application", "label_values(serve_core_deployment_target_replicas, application)")
DEPLOYMENT = Variable("deployment", "Deployment",
                      'label_values(serve_core_deployment_target_replicas{application=~"$application"}, deployment)')


# --- serving overview -------------------------------------------------------------------------

HTTP = "serve_core_http_requests_total"
HTTP_BUCKET = "serve_core_http_request_latency_seconds_bucket"
PROXY_ONGOING = "serve_core_proxy_ongoing_requests"
# Every serve_core process exports the proxy gauge (0 where there is no proxy); proxies are the
# processes that count HTTP requests.
PROXIES_ONLY = f"and on (instance) group by (instance) ({HTTP})"


def serving() -> Dashboard:
    latency = tuple(
        Query(quantile(q, HTTP_BUCKET, "application", APP), f"{{{{application}}}} p{q * 100:g}") for q in (0.5, 0.9, 0.99)
    )
    processing = tuple(
        Query(quantile(q, "serve_core_replica_processing_latency_seconds_bucket", "application, deployment", APP, DEP),
              f"{{{{application}}}}/{{{{deployment}}}} p{q * 100:g}") for q in (0.5, 0.99)
    )
    return Dashboard(
        uid="serve-core-serving",
        title="serve-core / Serving overview",
        description="Request rate, errors and latency per application, deployment and proxy (server side).",
        variables=(APPLICATION, DEPLOYMENT),
        annotations=FAULT_ANNOTATIONS,
        items=(
            Row("Applications (at the proxies)"),
            Panel("Requests/s", HTTP, (Query(f"sum({rate(HTTP, APP)})", "requests/s"),), unit="reqps", kind="stat",
                  description="HTTP requests answered by every proxy, any status."),
            Panel("Error ratio", HTTP, (Query(error_ratio_by("application", APP), "{{application}}"),),
                  unit="percentunit", kind="stat", thresholds=(0.001,), decimals=3,
                  description="Share of answers that are not 2xx, per application."),
            Panel("p99 latency", HTTP_BUCKET, (Query(quantile(0.99, HTTP_BUCKET, "", APP), "p99"),), unit="s", kind="stat",
                  description="Proxy latency from request to last byte, all applications selected."),
            Panel("In flight at proxies", PROXY_ONGOING, (Query(f"sum({PROXY_ONGOING} {PROXIES_ONLY})", "in flight"),),
                  kind="stat", description="HTTP requests in progress, summed over proxies."),
            Panel("Requests/s by application and status", HTTP,
                  (Query(f"sum by (application, status) ({rate(HTTP, APP)})", "{{application}} {{status}}"),),
                  unit="reqps", stack=True, description="serve_core_http_requests_total by status code."),
            Panel("Error ratio by application", HTTP, (Query(error_ratio_by("application", APP), "{{application}}"),),
                  unit="percentunit", description="Non-2xx share of HTTP answers (0 when none failed)."),
            Panel("Latency by application (proxy)", HTTP_BUCKET, latency, unit="s", width=24,
                  description="p50, p90, p99 of serve_core_http_request_latency_seconds, interpolated in its buckets."),
            Row("Deployments (at the replicas)"),
            Panel("Requests/s by deployment and outcome", "serve_core_replica_requests_total",
                  (Query(f"sum by (application, deployment, outcome) ({rate('serve_core_replica_requests_total', APP, DEP)})",
                         "{{application}}/{{deployment}} {{outcome}}"),),
                  unit="reqps", stack=True, description="Requests replicas finished: ok, error (user code raised), cancelled."),
            Panel("Processing latency by deployment", "serve_core_replica_processing_latency_seconds_bucket", processing,
                  unit="s", description="Time in user code at the replica (p50, p99)."),
            Panel("Ongoing requests per replica", "serve_core_replica_ongoing_requests",
                  (Query(sel("serve_core_replica_ongoing_requests", APP, DEP), "{{deployment}} {{replica}}"),),
                  description="Requests running at each replica (max_ongoing_requests bounds it)."),
            Panel("Rejected by full or draining replicas", "serve_core_replica_rejected_total",
                  (Query(f"sum by (application, deployment) ({rate('serve_core_replica_rejected_total', APP, DEP)})",
                         "{{application}}/{{deployment}}"),),
                  unit="reqps", description="The caller sends a rejected request to another replica (retry reason rejected)."),
            Panel("Retries by reason", "serve_core_router_retries_total",
                  (Query(f"sum by (application, deployment, reason) ({rate('serve_core_router_retries_total', APP, DEP)})",
                         "{{deployment}} {{reason}}"),),
                  unit="reqps", width=24,
                  description="Requests a caller sent again: rejected (replica full), connect_failed (never reached a "
                              "replica), replica_died (accepted, then lost; only idempotent requests)."),
            Row("Proxies"),
            Panel("Requests/s per proxy", HTTP, (Query(f"sum by (instance) ({rate(HTTP, APP)})", "{{instance}}"),),
                  unit="reqps", description="Per proxy process (its metrics address)."),
            Panel("Error ratio per proxy", HTTP, (Query(error_ratio_by("instance", APP), "{{instance}}"),),
                  unit="percentunit", description="Non-2xx share of each proxy's answers."),
            Panel("p99 latency per proxy", HTTP_BUCKET, (Query(quantile(0.99, HTTP_BUCKET, "instance", APP), "{{instance}}"),),
                  unit="s"),
            Panel("Ongoing requests per proxy", PROXY_ONGOING, (Query(f"{PROXY_ONGOING} {PROXIES_ONLY}", "{{instance}}"),),
                  description="HTTP requests in progress at each proxy that has answered any."),
        ),
    )


# --- autoscaling ------------------------------------------------------------------------------


def autoscaling() -> Dashboard:
    by = "{{application}}/{{deployment}}"
    return Dashboard(
        uid="serve-core-autoscaling",
        title="serve-core / Autoscaling",
        description="Target, desired and running replicas, demand and queues, and the autoscaler's decisions.",
        variables=(APPLICATION, DEPLOYMENT),
        annotations=(DECISION, *FAULT_ANNOTATIONS),
        items=(
            Row("Replicas"),
            Panel("Target, desired and running replicas", "serve_core_deployment_replicas", (
                Query(sel("serve_core_deployment_target_replicas", APP, DEP), f"{by} target",
                      metric="serve_core_deployment_target_replicas"),
                Query(sel("serve_core_autoscaler_desired_replicas", APP, DEP), f"{by} desired",
                      metric="serve_core_autoscaler_desired_replicas"),
                Query(f"sum by (application, deployment) ({sel('serve_core_deployment_replicas', APP, DEP, RUNNING)})",
                      f"{by} running"),
            ), description="Target: what the controller reconciles to. Desired: what the policy wants now (autoscaling "
                           "deployments only). Running: replicas serving (controller view).", decimals=0),
            Panel("Replicas by state", "serve_core_deployment_replicas",
                  (Query(f"sum by (deployment, state) ({sel('serve_core_deployment_replicas', APP, DEP)})",
                         "{{deployment}} {{state}}"),),
                  stack=True, decimals=0, description="STARTING, RUNNING, STOPPING (draining) per deployment."),
            Row("Demand and queues"),
            Panel("Demand (running + queued)", "serve_core_autoscaler_demand",
                  (Query(sel("serve_core_autoscaler_demand", APP, DEP), by),),
                  description="Requests running at replicas plus queued at callers, summed over callers, as the "
                              "controller last heard it; the policy sizes for target_ongoing_requests per replica."),
            Panel("Queued at callers", "serve_core_router_queued_requests",
                  (Query(f"sum by (application, deployment) ({sel('serve_core_router_queued_requests', APP, DEP)})", by),),
                  description="Requests waiting at proxies and handles for a replica with room (bounded by "
                              "max_queued_requests; held here while a deployment is at zero)."),
            Panel("Running at replicas", "serve_core_replica_ongoing_requests",
                  (Query(f"sum by (application, deployment) ({sel('serve_core_replica_ongoing_requests', APP, DEP)})", by),),
                  description="Requests in user code, summed over a deployment's replicas."),
            Panel("Demand per running replica", "serve_core_autoscaler_demand", (
                Query(f"{sel('serve_core_autoscaler_demand', APP, DEP)} / on (application, deployment) "
                      f"sum by (application, deployment) ({sel('serve_core_deployment_replicas', APP, DEP, RUNNING)})",
                      by),
            ), description="Compare with the deployment's target_ongoing_requests."),
            Row("Decisions"),
            Panel("Scaling decisions", "serve_core_autoscaler_decisions_total", (
                Query(rose(sel("serve_core_autoscaler_decisions_total", APP, DEP), "application, deployment, reason", RATE),
                      "{{deployment}} {{reason}}"),
            ), bars=True, decimals=0, description="Changes of the replica target by reason (scale_up, scale_down, panic, "
                                                  "from_zero, to_zero) per interval."),
            Panel("Decisions in the time range", "serve_core_autoscaler_decisions_total", (
                Query(rose(sel("serve_core_autoscaler_decisions_total", APP, DEP), "reason", "$__range"), "{{reason}}"),
            ), kind="stat", decimals=0),
            Panel("Controller reconcile pass p99", "serve_core_controller_loop_duration_seconds_bucket", (
                Query(quantile(0.99, "serve_core_controller_loop_duration_seconds_bucket", ""), "p99"),
            ), unit="s", kind="stat", description="One pass of the controller's reconcile loop."),
        ),
    )


# --- chaos and SLO ----------------------------------------------------------------------------


def chaos_slo() -> Dashboard:
    views = (("server", SERVER), ("client", CLIENT))
    stats: list[Panel] = []
    for view, b in views:
        stats.append(Panel(
            f"Availability ({view})", b.requests,
            (Query(at_window(partial(availability_query, b), "$__range"), view),),
            unit="percentunit", kind="stat", decimals=3, min=None,
            description=f"2xx share of {b.requests} over the time range (chaos' availability_query).",
        ))
    for view, b in views:
        stats.append(Panel(
            f"Error budget left ({view})", b.requests,
            (Query(f"1 - ({at_window(partial(error_ratio_query, b), '$__range')}) / {budget():.10g}", view),),
            unit="percentunit", kind="stat", decimals=1, min=None,
            description=f"1 - error ratio / (1 - {AVAILABILITY.objective:g}) over the time range; below 0: spent.",
        ))
    burn_panels = tuple(
        Panel(
            f"Burn rate ({view})", b.requests,
            tuple(Query(burn_rate(b, s), f"over {minutes(s)}") for s in burn_windows_s()),
            unit="none", thresholds=tuple(sorted({w.factor for w in BURN_WINDOWS})),
            description=f"Error ratio over each alert window per unit of error budget (objective "
                        f"{AVAILABILITY.objective:g}); 1 spends the budget exactly over the SLO period. Red lines: "
                        "the alerts' factors (" + ", ".join(f"{w.name} {w.factor:g}x" for w in BURN_WINDOWS) + ").",
        ) for view, b in views
    )
    conditions = []
    for view, b in views:
        for w in BURN_WINDOWS:
            conditions.append(Query(burn_alert_condition(b, w), f"SLOErrorBudgetBurn {w.name} ({w.severity}) {view}",
                                    metric=b.requests))
        conditions.append(Query(latency_alert_condition(b), f"SLOLatencyHigh {LATENCY.name} {view}",
                                metric=b.latency_buckets))
    return Dashboard(
        uid="serve-core-chaos-slo",
        title="serve-core / Chaos and SLO",
        description="Faults (annotations), availability and error budget, burn rates and the alert conditions of "
                    "chaos.slo.alerts, server side (serve_core) and client side (the load generator).",
        annotations=(*FAULT_ANNOTATIONS, DECISION, ALERT_FIRING),
        items=(
            Row(f"SLO: availability {AVAILABILITY.objective:g}, p{LATENCY.percentile:g} under {LATENCY.threshold_ms:g} ms"),
            *stats,
            *burn_panels,
            Panel("Alert conditions (an alert fires above 1)", SERVER.requests, tuple(conditions), unit="none",
                  thresholds=(1.0,), width=24,
                  description="Each chaos.slo.alerts rule as a number: budget burn, the smaller of the error ratios over "
                              "its long and short windows over factor x budget; latency, the percentile over "
                              f"{duration(LATENCY_ALERT_WINDOW_S)} over the threshold."),
            Row("Server and client side by side"),
            Panel("Requests/s: server and client", SERVER.requests, (
                Query(f"sum({rate(SERVER.requests)})", "server (proxies)"),
                Query(f"sum({rate(CLIENT.requests)})", "client (load generator)", metric=CLIENT.requests),
            ), unit="reqps"),
            Panel(f"p{LATENCY.percentile:g} latency: server and client", SERVER.latency_buckets, (
                Query(at_window(partial(latency_query, SERVER, LATENCY.percentile), RATE), "server"),
                Query(at_window(partial(latency_query, CLIENT, LATENCY.percentile), RATE), "client",
                      metric=CLIENT.latency_buckets),
            ), unit="ms", description="Client latency is from each request's intended start (open loop), so it "
                                      "includes queueing the server never sees."),
            Panel("Client answers by status", CLIENT.requests,
                  (Query(f"sum by (status) ({rate(CLIENT.requests)})", "{{status}}"),), unit="reqps", stack=True,
                  description="An HTTP code, or the error kind (timeout, refused, reset, ...)."),
            Panel("Client retries and missed starts", "loadgen_connection_retries_total", (
                Query(f"sum({rate('loadgen_connection_retries_total')})", "connection retried on another target"),
                Query(f"sum({rate('loadgen_late_starts_total')})", "late start", metric="loadgen_late_starts_total"),
                Query(f"sum({rate('loadgen_missed_starts_total')})", "missed start (in-flight cap)",
                      metric="loadgen_missed_starts_total"),
            ), unit="reqps"),
            Row("Faults and their effects"),
            Panel("Unexpected actor and worker deaths (Ray)", "ray_node_manager_unexpected_worker_failure_total", (
                Query("sum by (NodeAddress, Type) (ray_node_manager_unexpected_worker_failure_total)",
                      "{{NodeAddress}} {{Type}}"),
            ), decimals=0, description="Cumulative, per node: what a replica, proxy or controller kill leaves in Ray's "
                                       "raylet metrics."),
            Panel("Retries by reason", "serve_core_router_retries_total", (
                Query(f"sum by (reason) ({rate('serve_core_router_retries_total')})", "{{reason}}"),
            ), unit="reqps", description="connect_failed and replica_died follow faults; rejected follows full replicas."),
            Panel("Replicas running", "serve_core_deployment_replicas", (
                Query(f"sum by (application, deployment) ({sel('serve_core_deployment_replicas', RUNNING)})",
                      "{{application}}/{{deployment}}"),
            ), decimals=0, description="A killed replica shows as a dip until its replacement runs."),
            Panel("Proxies answering", HTTP, (
                Query(f"count(sum by (instance) ({rate(HTTP)}) > 0)", "proxies with traffic"),
            ), decimals=0, description="Proxies that answered requests in the interval."),
        ),
    )


# --- cluster ----------------------------------------------------------------------------------


def cluster() -> Dashboard:
    node = "{{node}} {{ip}}"
    return Dashboard(
        uid="serve-core-cluster",
        title="serve-core / Cluster",
        description="Ray nodes, CPU and memory (Ray's node metrics), logical resources, and serve_core processes.",
        annotations=FAULT_ANNOTATIONS,
        items=(
            Row("Nodes"),
            Panel("Alive nodes", "ray_cluster_active_nodes",
                  (Query(f"sum({ray_gauge('ray_cluster_active_nodes')})", "nodes"),), kind="stat", decimals=0,
                  description="Nodes Ray counts as active (from the head)."),
            Panel("Logical CPUs", "ray_resources",
                  (Query(f"sum({ray_gauge('ray_resources', CPU)})", "CPUs"),), kind="stat",
                  description="CPUs the nodes offer to Ray (used + available)."),
            Panel("Logical CPUs in use", "ray_resources",
                  (Query(f"sum({ray_gauge('ray_resources', CPU, USED)})", "used"),), kind="stat",
                  description="CPUs reserved by actors (replicas, proxies, controller) and tasks."),
            Panel("Memory used", "ray_node_mem_used",
                  (Query(f"sum({ray_gauge('ray_node_mem_used')})", "used"),), unit="bytes", kind="stat",
                  description="Summed over nodes (nodes sharing one machine count it once each)."),
            Row("CPU"),
            Panel("CPU utilization per node", "ray_node_cpu_utilization",
                  (Query(f"sum by (node, ip) ({ray_gauge('ray_node_cpu_utilization', over='avg')})", node),),
                  unit="percent", max=100.0, description="Of the node's cores (ray_node_cpu_count)."),
            Panel("Logical CPUs in use per node", "ray_resources",
                  (Query(f"sum by (NodeAddress) ({ray_gauge('ray_resources', CPU, USED)})",
                         "{{NodeAddress}}"),), description="Ray's CPU resource reserved on each node."),
            Panel("serve_core process CPU", "process_cpu_seconds_total", (
                Query(f"sum by (component, instance) ({rate('process_cpu_seconds_total')} and on (instance) {PROXY_ONGOING})",
                      "{{component}} {{instance}}"),
            ), unit="percentunit", width=24,
                  description="CPU seconds per second of each serve_core process (controller, proxies, replicas): the "
                              "processes that export serve_core metrics."),
            Row("Memory"),
            Panel("Memory used per node", "ray_node_mem_used",
                  (Query(f"sum by (node, ip) ({ray_gauge('ray_node_mem_used')})", node),), unit="bytes"),
            Panel("Memory used share per node", "ray_node_mem_used", (
                Query(f"sum by (node, ip) ({ray_gauge('ray_node_mem_used')}) / "
                      f"sum by (node, ip) ({ray_gauge('ray_node_mem_total')})", node),
            ), unit="percentunit", max=1.0),
            Panel("Object store used per node", "ray_object_store_used_memory", (
                Query(f"sum by (NodeAddress) ({ray_gauge('ray_object_store_used_memory')})", "{{NodeAddress}}"),
            ), unit="bytes"),
            Panel("serve_core process memory (RSS)", "process_resident_memory_bytes", (
                Query(f"process_resident_memory_bytes and on (instance) {PROXY_ONGOING}", "{{component}} {{instance}}"),
            ), unit="bytes"),
        ),
    )


def all_dashboards() -> list[Dashboard]:
    return [serving(), autoscaling(), chaos_slo(), cluster()]
