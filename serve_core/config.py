"""User-facing configuration: deployment options, autoscaling, HTTP options, YAML.

All are pydantic models with descriptions and cross-field checks; ``parse`` turns a
pydantic error into a ConfigError that names the field, the value and the fix.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from serve_core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

ALLOWED_ACTOR_OPTIONS = {
    "num_cpus", "num_gpus", "memory", "resources", "runtime_env", "accelerator_type",
    "object_store_memory",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class AutoscalingConfig(_Strict):
    """Ray Serve's autoscaling fields (behaviour lands with the autoscaler)."""

    min_replicas: int = Field(1, ge=0, description="Fewest replicas; 0 allows scale to zero.")
    max_replicas: int = Field(1, ge=1, description="Most replicas.")
    initial_replicas: int | None = Field(None, ge=0, description="Replicas at first deploy.")
    target_ongoing_requests: float = Field(2.0, gt=0, description="Desired ongoing+queued per replica.")
    upscale_delay_s: float = Field(30.0, ge=0, description="Demand must stay high this long.")
    downscale_delay_s: float = Field(600.0, ge=0, description="Demand must stay low this long.")
    downscale_to_zero_delay_s: float | None = Field(None, ge=0, description="Idle time before 1 -> 0.")
    upscaling_factor: float | None = Field(None, gt=0, description="Multiplier on scale-up steps.")
    downscaling_factor: float | None = Field(None, gt=0, description="Multiplier on scale-down steps.")
    look_back_period_s: float = Field(30.0, gt=0, description="Window demand is averaged over.")
    metrics_interval_s: float = Field(10.0, gt=0, description="How often callers report demand.")
    # serve_core's fast path (Knative's panic mode); not Ray Serve fields: leave them out for Ray Serve.
    panic_threshold: float = Field(
        2.0, gt=1, allow_inf_nan=False,
        description="Latest demand / (running replicas * target_ongoing_requests) at which the fast path scales "
                    "up at once.")
    panic_window_s: float = Field(30.0, ge=0, allow_inf_nan=False,
                                  description="No scale-down this long after the fast path fired.")

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas={self.min_replicas} is above max_replicas={self.max_replicas}; "
                "lower min_replicas or raise max_replicas"
            )
        if self.initial_replicas is not None and not (
            self.min_replicas <= self.initial_replicas <= self.max_replicas
        ):
            raise ValueError(
                f"initial_replicas={self.initial_replicas} is outside "
                f"[min_replicas={self.min_replicas}, max_replicas={self.max_replicas}]"
            )
        return self


class BackpressureConfig(_Strict):
    """``backpressure_config=``: the HTTP answer to a request shed because the caller's queue
    is at ``max_queued_requests`` (Ray Serve's names). A request refused because the
    deployment has no replica is always a 503."""

    status_code: Literal[503, 429] = Field(503, description="503 (default) or 429 for a shed request.")
    retry_after_s: float | None = Field(
        None, ge=0, allow_inf_nan=False,
        description="Retry-After header of a shed request, rounded up to whole seconds (serve_core sends 1 when unset).",
    )


class ProxyLocation(StrEnum):
    """Where proxies run (``serve.start(proxy_location=...)``); Ray Serve's values."""

    Disabled = "Disabled"
    HeadOnly = "HeadOnly"
    EveryNode = "EveryNode"


class DeploymentOptions(_Strict):
    """Options of ``@serve.deployment`` and ``Deployment.options``."""

    name: str | None = Field(None, min_length=1, description="Deployment name; defaults to the class or function name.")
    num_replicas: int | Literal["auto"] | None = Field(None, description="Fixed replica count, or 'auto'.")
    max_ongoing_requests: int = Field(5, ge=1, description="Requests a replica runs at once; more are rejected to the caller's queue.")
    max_queued_requests: int = Field(-1, ge=-1, description="Requests a caller queues per deployment before answering 503; -1 is unbounded.")
    user_config: Any = Field(None, description="Passed to reconfigure(); changing only it does not restart replicas.")
    ray_actor_options: dict[str, Any] = Field(default_factory=dict, description="num_cpus, num_gpus, memory, resources, runtime_env.")
    health_check_period_s: float = Field(10.0, gt=0, description="Seconds between health checks.")
    health_check_timeout_s: float = Field(30.0, gt=0, description="A health check slower than this fails.")
    graceful_shutdown_wait_loop_s: float = Field(2.0, gt=0, description="Poll period while draining.")
    graceful_shutdown_timeout_s: float = Field(20.0, ge=0, description="Longest drain before a replica is killed.")
    autoscaling_config: AutoscalingConfig | None = Field(None, description="Enables autoscaling.")
    backpressure_config: BackpressureConfig | None = Field(
        None, description="Status code (503 or 429) and Retry-After of requests shed at max_queued_requests.")
    max_replicas_per_node: int | None = Field(
        None, ge=1, description="Most replicas of this deployment on one node (None: no cap). Replicas are "
        "spread over the nodes either way; one that fits on no node under the cap waits for room.")
    idempotent: bool = Field(False, description="Retry requests whose replica died after accepting them.")
    max_surge_fraction: float = Field(
        0.2, gt=0, le=1,
        description="Share of the replicas a rolling update replaces at once (at least one): new ones start "
        "up to this far above the target, and an old one drains only when a new one is healthy.",
    )
    route_prefix: str | None = Field(None, description="Deprecated in Ray Serve; use serve.run(route_prefix=).")

    @field_validator("num_replicas")
    @classmethod
    def _num_replicas(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 0:
            raise ValueError("must be >= 0 (0 only with autoscaling min_replicas=0)")
        return v

    @field_validator("ray_actor_options")
    @classmethod
    def _actor_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = set(v) - ALLOWED_ACTOR_OPTIONS
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(ALLOWED_ACTOR_OPTIONS)}")
        for key in ("num_cpus", "num_gpus", "memory"):
            if key in v and (not isinstance(v[key], (int, float)) or v[key] < 0):
                raise ValueError(f"{key} must be a number >= 0, got {v[key]!r}")
        if "resources" in v and not isinstance(v["resources"], dict):
            raise ValueError("resources must be a mapping of name to amount")
        return v

    @model_validator(mode="after")
    def _replicas_vs_autoscaling(self) -> DeploymentOptions:
        if self.autoscaling_config is not None and isinstance(self.num_replicas, int):
            raise ValueError(
                "num_replicas and autoscaling_config are both set; set num_replicas='auto' "
                "or drop one of them"
            )
        return self

    def target_replicas(self) -> int:
        """Replicas to run before the autoscaler has a say."""
        if self.autoscaling_config is not None:
            ac = self.autoscaling_config
            return ac.initial_replicas if ac.initial_replicas is not None else ac.min_replicas
        if self.num_replicas == "auto":
            return 1
        return 1 if self.num_replicas is None else self.num_replicas

    def actor_options(self) -> dict[str, Any]:
        opts = dict(self.ray_actor_options)
        opts.setdefault("num_cpus", 1)  # as Ray Serve: a replica reserves one CPU
        return opts


class DataPathOptions(_Strict):
    """``http_options.data_path``: the direct connections between callers and replicas.

    Every connection is authenticated with the cluster secret whatever these say; TLS
    adds encryption (and a second proof of membership) on top.
    """

    max_frame_bytes: int | None = Field(
        None, gt=1024,
        description="Largest request or reply either end of a direct connection accepts; a peer that "
        "declares more is cut off. Default: max_body_bytes plus 1 MiB of headroom.",
    )
    tls_certfile: str | None = Field(None, description="This node's certificate (PEM), at the same path on every node.")
    tls_keyfile: str | None = Field(None, description="Its private key (PEM).")
    tls_ca_certs: str | None = Field(None, description="The cluster CA (PEM) that signed every node's certificate.")

    @model_validator(mode="after")
    def _tls_all_or_none(self) -> DataPathOptions:
        given = [n for n in ("tls_certfile", "tls_keyfile", "tls_ca_certs") if getattr(self, n)]
        if given and len(given) != 3:
            missing = sorted({"tls_certfile", "tls_keyfile", "tls_ca_certs"} - set(given))
            raise ValueError(f"TLS needs tls_certfile, tls_keyfile and tls_ca_certs together; missing {missing}")
        return self


def data_path_settings(http_options: dict[str, Any]) -> dict[str, Any]:
    """What replicas and callers need of ``http_options`` (a model_dump), defaults resolved."""
    dp = dict(http_options.get("data_path") or {})
    if not dp.get("max_frame_bytes"):
        dp["max_frame_bytes"] = int(http_options.get("max_body_bytes", 10 * 1024 * 1024)) + 1024 * 1024
    dp["debug_errors"] = bool(http_options.get("debug_errors", False))
    dp["metrics_host"] = http_options.get("metrics_host")
    dp["logging_config"] = http_options.get("logging_config")  # replicas apply it (log_setup.py)
    return dp


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class LoggingConfig(_Strict):
    """``logging_config``: Ray Serve's fields. ``log_level`` sets serve_core's loggers in the
    controller, proxies and replicas; ``enable_access_log`` makes each proxy log a line per
    request (method, path, status, milliseconds) at INFO. ``encoding``, ``logs_dir`` and
    ``additional_log_standard_attrs`` are accepted and have no effect: logs go where Ray
    sends its workers' output, as text."""

    encoding: Literal["TEXT", "JSON"] = Field("TEXT", description="Accepted; serve_core logs text.")
    log_level: str = Field("INFO", description=f"One of {', '.join(LOG_LEVELS)}.")
    logs_dir: str | None = Field(None, description="Accepted; logs go to Ray's worker log files.")
    enable_access_log: bool = Field(True, description="A line per request in each proxy's log.")
    additional_log_standard_attrs: list[str] = Field(default_factory=list, description="Accepted; not used.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> str:
        name = str(v).upper()
        if name not in LOG_LEVELS:
            raise ValueError(f"{v!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return name

    def ignored(self) -> list[str]:
        """The fields set to something serve_core does not act on."""
        return [k for k in ("encoding", "logs_dir", "additional_log_standard_attrs")
                if getattr(self, k) != type(self).model_fields[k].get_default(call_default_factory=True)]


class HTTPOptions(_Strict):
    """``serve.start(http_options=...)``: where and how proxies listen."""

    host: str = Field("127.0.0.1", description="Address proxies bind; 0.0.0.0 to expose.")
    port: int = Field(8000, ge=0, le=65535, description="Proxy port (same on every node).")
    request_timeout_s: float | None = Field(None, gt=0, description="End-to-end limit; 408 past it.")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    keep_alive_timeout_s: float = Field(
        75.0, gt=0,
        description="Idle keep-alive connections close after this; longer than clients' own idle expiry "
        "(often 5 s) so a client never reuses a connection the proxy is closing.",
    )
    body_read_timeout_s: float = Field(
        30.0, gt=0,
        description="One deadline for the whole request: its head and all of its body must arrive within this many "
        "seconds of its first byte (a connection's first request: of the connection's start), however the bytes are "
        "spread out; otherwise 408 and the connection is closed.",
    )
    header_timeout_s: float = Field(
        10.0, gt=0,
        description="A tighter deadline for the head alone: the request line and headers must arrive within this many "
        "seconds of the request's first byte (or of the connection's start); otherwise 408 and the connection is "
        "closed. At most body_read_timeout_s.",
    )
    max_header_bytes: int = Field(
        64 * 1024, gt=0,
        description="Bytes the request line and headers may take, counted as they arrive (a header still being sent "
        "counts); more gets 431 and the connection is closed.",
    )
    max_connections: int = Field(
        10_000, ge=1,
        description="Open client connections one proxy holds; a connection beyond them gets 503 and is closed before "
        "its request is read. The proxy raises its open-file limit (RLIMIT_NOFILE) toward this.",
    )
    debug_errors: bool = Field(
        False,
        description="Send internal error detail (tracebacks, nested calls' errors) to HTTP clients. Off: a client gets "
        "the error type, a one-line message and the request id, and the detail goes to the proxy's or replica's log "
        "under that id.",
    )
    expose_routes: bool = Field(
        True,
        description="Serve GET /-/routes and list the routes in 404 bodies (Ray Serve serves /-/routes too). Turn off "
        "on a proxy that faces untrusted clients to keep the route table private.",
    )
    expose_metrics: bool = Field(
        True,
        description="Serve Prometheus metrics at /-/metrics on the proxy's port. Each process's metrics port serves "
        "them as well (see metrics_host); turn this off on a proxy that faces untrusted clients.",
    )
    metrics_host: str | None = Field(
        None,
        description="Address the metrics listeners of proxies and replicas bind. None: a proxy's host (127.0.0.1 when "
        "that is 0.0.0.0 or ::), a replica's node address.",
    )
    ssl_keyfile: str | None = Field(None, description="Proxy TLS: private key (PEM) at this path on every proxy node.")
    ssl_certfile: str | None = Field(None, description="Proxy TLS: certificate chain (PEM); with ssl_keyfile, proxies serve HTTPS only.")
    ssl_keyfile_password: str | None = Field(None, description="Proxy TLS: password of an encrypted ssl_keyfile.")
    ssl_ca_certs: str | None = Field(None, description="Proxy TLS: CA bundle (PEM) loaded for client certificates, as uvicorn's ssl_ca_certs.")
    location: Literal["EveryNode", "HeadOnly", "Disabled"] = Field("EveryNode", description="Where proxies run.")
    root_path: str = Field("", description="Prefix stripped behind a reverse proxy.")
    data_path: DataPathOptions = Field(
        default_factory=DataPathOptions, description="Direct connections between callers and replicas: frame cap, TLS.")
    logging_config: LoggingConfig | None = Field(
        None, description="Log level and access log of the controller, proxies and replicas; set it with "
        "serve.start(logging_config=) or a config file's top-level logging_config. None: warnings only, no access log.")

    @model_validator(mode="after")
    def _limits_and_tls(self) -> HTTPOptions:
        if self.header_timeout_s > self.body_read_timeout_s:
            raise ValueError(
                f"header_timeout_s={self.header_timeout_s} is above body_read_timeout_s={self.body_read_timeout_s} "
                "(the deadline for head and body together); lower header_timeout_s or raise body_read_timeout_s"
            )
        if bool(self.ssl_keyfile) != bool(self.ssl_certfile):
            raise ValueError("proxy TLS needs ssl_certfile and ssl_keyfile together; set both or neither")
        if (self.ssl_keyfile_password or self.ssl_ca_certs) and not self.ssl_certfile:
            raise ValueError("ssl_keyfile_password and ssl_ca_certs apply only with ssl_certfile and ssl_keyfile; set those")
        return self


def validate_route_prefix(v: str | None) -> str | None:
    if v is None:
        return v
    if not v.startswith("/"):
        raise ValueError(f"{v!r} must start with '/', for example '/{v}'")
    if len(v) > 1 and v.endswith("/"):
        raise ValueError(f"{v!r} must not end with '/'; use {v.rstrip('/')!r}")
    if "{" in v or "}" in v:
        raise ValueError(f"{v!r} must not contain path parameters")
    return v


def parse(model: type[M], data: Any, where: str = "") -> M:
    """Validate ``data``; raise ConfigError naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{where}.{loc}" if where and loc else (where or loc or model.__name__)
        value = err.get("input")
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(field, value, msg) from None
