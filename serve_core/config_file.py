"""The config file ``serve-core deploy`` and ``serve-core run`` read: Ray Serve's format, as
its ``serve build`` writes it, plus serve_core's own extras.

Keys with a meaning here are honoured (``proxy_location``, ``http_options``, the top-level
``logging_config``'s level and access log, each deployment's options including
``max_replicas_per_node`` and ``max_surge_percent``). Ray Serve's keys with none (gRPC,
placement groups, tracing, target capacity, per-application and per-deployment logging, ...)
are accepted and listed by ``ServeConfig.ignored()``, which the commands print as one
warning; unknown keys are still errors naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serve_core.config import (
    AutoscalingConfig,
    BackpressureConfig,
    HTTPOptions,
    LoggingConfig,
    ProxyLocation,
    validate_route_prefix,
)

RAY_ONLY_DEPLOYMENT_KEYS = ("placement_group_bundles", "placement_group_strategy", "placement_group_bundle_label_selector",
                            "logging_config", "request_router_config", "gang_scheduling_config", "deployment_actors",
                            "rolling_update_percentage")
RAY_ONLY_APPLICATION_KEYS = ("host", "port", "autoscaling_policy", "logging_config", "external_scaler_enabled")
RAY_ONLY_TOP_KEYS = ("grpc_options", "controller_options", "tracing_config", "target_capacity")


def _set(model: BaseModel, keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if k in model.model_fields_set and getattr(model, k) not in (None, {}, [])]


class DeploymentOverride(BaseModel):
    """One entry of ``applications[].deployments`` in the YAML."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends
    name: str = Field(..., min_length=1, description="Name of a deployment in the application.")
    num_replicas: int | Literal["auto"] | None = None
    max_ongoing_requests: int | None = Field(None, ge=1)
    max_queued_requests: int | None = Field(None, ge=-1)
    user_config: Any = None
    ray_actor_options: dict[str, Any] | None = None
    health_check_period_s: float | None = Field(None, gt=0)
    health_check_timeout_s: float | None = Field(None, gt=0)
    graceful_shutdown_wait_loop_s: float | None = Field(None, gt=0)
    graceful_shutdown_timeout_s: float | None = Field(None, ge=0)
    autoscaling_config: AutoscalingConfig | None = None
    backpressure_config: BackpressureConfig | None = None
    idempotent: bool | None = None
    max_surge_fraction: float | None = Field(None, gt=0, le=1)
    max_replicas_per_node: int | None = Field(None, ge=1)
    max_surge_percent: float | None = Field(None, gt=0, le=100, description="Ray Serve's name: max_surge_fraction * 100.")
    # Ray Serve's keys with no meaning here: accepted, named in one warning (``ignored``).
    placement_group_bundles: Any = None
    placement_group_strategy: Any = None
    placement_group_bundle_label_selector: Any = None
    logging_config: Any = None
    request_router_config: Any = None
    gang_scheduling_config: Any = None
    deployment_actors: Any = None
    rolling_update_percentage: Any = None

    def changes(self) -> dict[str, Any]:
        out = self.model_dump(exclude={"name", *RAY_ONLY_DEPLOYMENT_KEYS, "max_surge_percent"}, exclude_unset=True)
        if self.max_surge_percent is not None:
            out["max_surge_fraction"] = self.max_surge_percent / 100
        return out


class ApplicationConfig(BaseModel):
    """One entry of ``applications`` in the YAML (Ray Serve's subset)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends
    name: str = Field("default", min_length=1)
    route_prefix: str | None = Field("/", description="HTTP prefix, or null for handle-only.")
    import_path: str = Field(..., description="module:attribute of a bound application.")
    args: dict[str, Any] = Field(default_factory=dict, description="Passed to an app builder function.")
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    deployments: list[DeploymentOverride] = Field(default_factory=list)
    # Ray Serve's keys with no meaning here (host and port are deprecated there too).
    host: Any = None
    port: Any = None
    autoscaling_policy: Any = None
    logging_config: Any = None
    external_scaler_enabled: Any = None

    @field_validator("import_path")
    @classmethod
    def _import_path(cls, v: str) -> str:
        if ":" not in v and "." not in v:
            raise ValueError(f"{v!r} is not 'module:attribute'; for example 'examples.function_app.app:app'")
        return v

    @field_validator("route_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        return validate_route_prefix(v)


class ServeConfig(BaseModel):
    """The whole ``serve-core deploy`` document."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends
    proxy_location: ProxyLocation | None = Field(None, description="Where proxies run; sets http_options.location.")
    http_options: HTTPOptions = Field(default_factory=HTTPOptions)
    logging_config: LoggingConfig | None = Field(None, description="Log level and access log (see LoggingConfig).")
    applications: list[ApplicationConfig] = Field(..., min_length=1)
    # Ray Serve's keys with no meaning here: accepted, named in one warning (``ignored``).
    grpc_options: Any = None
    controller_options: Any = None
    tracing_config: Any = None
    target_capacity: Any = None

    def effective_http_options(self) -> HTTPOptions:
        """``http_options`` with the top-level ``proxy_location`` and ``logging_config`` folded in."""
        update: dict[str, Any] = {}
        if self.proxy_location is not None:
            update["location"] = self.proxy_location.value
        if self.logging_config is not None:
            update["logging_config"] = self.logging_config
        return self.http_options.model_copy(update=update)

    def ignored(self) -> list[str]:
        """Every key set in the document that serve_core accepts and does not act on, as a path."""
        out = _set(self, RAY_ONLY_TOP_KEYS)
        if self.logging_config is not None:
            out += [f"logging_config.{k}" for k in self.logging_config.ignored()]
        for i, app in enumerate(self.applications):
            out += [f"applications[{i}].{k}" for k in _set(app, RAY_ONLY_APPLICATION_KEYS)]
            for j, d in enumerate(app.deployments):
                out += [f"applications[{i}].deployments[{j}].{k}" for k in _set(d, RAY_ONLY_DEPLOYMENT_KEYS)]
        return out

    @model_validator(mode="after")
    def _unique(self) -> ServeConfig:
        names = [a.name for a in self.applications]
        prefixes = [a.route_prefix for a in self.applications if a.route_prefix is not None]
        for label, values in (("name", names), ("route_prefix", prefixes)):
            dup = {v for v in values if values.count(v) > 1}
            if dup:
                raise ValueError(f"applications share {label} {sorted(dup)}; each must be unique")
        return self
