"""What a load run does, as one declaration: profile, targets, request, limits, metrics."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loadgen.profile import LoadProfile

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})  # RFC 9110, 9.2.2


class LoadSpec(BaseModel):
    """A load run. Rates in the profile are for the whole run (all workers together)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends

    profile: LoadProfile = Field(..., description="Arrival rate over time.")
    targets: list[str] = Field(..., min_length=1, description="Base URLs (e.g. each node's proxy); requests go "
                               "round-robin over them.")
    route: str = Field("/", description="Path (and query) appended to each target's base URL.")
    method: str = Field("GET", description="HTTP method.")
    payloads: list[Any] = Field(default_factory=list, description="JSON bodies, used in turn by request number; "
                                "empty: no body.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    workers: int = Field(1, ge=1, le=64, description="Locust processes sending requests (more than one runs a "
                         "Locust master plus this many --worker processes).")
    timeout_s: float = Field(5.0, gt=0, description="A request with no full answer this long after its intended "
                             "start has failed (timeout).")
    max_in_flight: int = Field(1000, ge=1, description="Cap on unanswered requests per worker; a start that would "
                               "pass it is skipped and counted as missed.")
    late_tolerance_s: float = Field(0.05, ge=0, description="A start later than this after its intended time "
                                    "is counted as late (it is still sent).")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of worker 0's Prometheus endpoint (worker i "
                              "uses port + i); 0 picks free ports.")
    metrics_host: str = Field("127.0.0.1", description="Address the Prometheus endpoints bind.")
    linger_s: float = Field(2.0, ge=0, description="Keep each Locust process (and its /metrics) up this long after "
                            "its last answer, so Prometheus scrapes the final counts.")
    keepalive_idle_s: float = Field(2.0, ge=0, description="Close a kept-alive connection idle longer than this "
                                    "(below servers' usual 5 s, so the server never closes it under a request).")
    retry_reset: bool = Field(False, description="Send an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS) once "
                              "more, to the next target, when its connection is reset or closed before any byte of "
                              "the answer: what a load balancer in front of the proxies does (Envoy's retry_on: reset, "
                              "nginx's proxy_next_upstream error). Recorded: each such record says retry 'reset'.")

    @field_validator("targets")
    @classmethod
    def _targets_are_http_urls(cls, targets: list[str]) -> list[str]:
        for target in targets:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname or parts.port is None:
                raise ValueError(f"target {target!r} must look like http://HOST:PORT[/prefix] (plain HTTP, "
                                 "explicit port)")
        return [t.rstrip("/") for t in targets]

    @field_validator("route")
    @classmethod
    def _route_is_a_path(cls, route: str) -> str:
        if not route.startswith("/"):
            raise ValueError(f"route {route!r} must start with '/'")
        return route

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method.upper() not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
        return method.upper()
