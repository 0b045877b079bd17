"""``ray.serve.schema``'s status types, where Ray Serve keeps them.

``serve.status()`` answers with these. Statuses are ``str`` enums, so comparing with
``ApplicationStatus.RUNNING`` or with ``"RUNNING"`` both work. The declarative config
documents (``ServeDeploySchema`` and friends) are here under Ray Serve's names too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from serve_core.config import (
    AutoscalingConfig,
    BackpressureConfig,
    LoggingConfig,
    ProxyLocation,
)
from serve_core.config import (
    HTTPOptions as HTTPOptionsSchema,
)
from serve_core.config_file import ApplicationConfig as ServeApplicationSchema
from serve_core.config_file import DeploymentOverride as DeploymentSchema
from serve_core.config_file import ServeConfig as ServeDeploySchema
from serve_core.ids import ApplicationStatus, DeploymentStatus

__all__ = [
    "ApplicationStatus", "ApplicationStatusOverview", "AutoscalingConfig", "BackpressureConfig",
    "DeploymentSchema", "DeploymentStatus", "DeploymentStatusOverview", "HTTPOptionsSchema", "LoggingConfig", "ProxyLocation",
    "ProxyStatus", "ServeApplicationSchema", "ServeDeploySchema", "ServeStatus",
]


class ProxyStatus(StrEnum):
    STARTING = "STARTING"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    DRAINING = "DRAINING"
    DRAINED = "DRAINED"


@dataclass
class DeploymentStatusOverview:
    """One deployment in ``serve.status()``. Ray Serve's fields first (``status_trigger``
    is always ``"UNSPECIFIED"`` here), then serve_core's: the replicas and the target."""

    status: DeploymentStatus | str
    status_trigger: str = "UNSPECIFIED"
    replica_states: dict[str, int] = field(default_factory=dict)
    message: str = ""
    replicas: list[dict[str, Any]] = field(default_factory=list)
    target_replicas: int = 0


@dataclass
class ApplicationStatusOverview:
    status: ApplicationStatus | str
    message: str = ""
    last_deployed_time_s: float = 0.0
    deployments: dict[str, DeploymentStatusOverview] = field(default_factory=dict)
    route_prefix: str | None = None


@dataclass
class ServeStatus:
    """``serve.status()``: every application and every proxy (a dict per node: state,
    message, and where it listens, where Ray Serve has a ProxyStatus)."""

    proxies: dict[str, dict[str, Any]] = field(default_factory=dict)
    applications: dict[str, ApplicationStatusOverview] = field(default_factory=dict)
    target_capacity: float | None = None
