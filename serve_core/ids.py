"""Identifiers and the small state enums shared by every module."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, order=True)
class DeploymentID:
    app: str
    name: str

    def key(self) -> str:
        return f"{self.app}#{self.name}"

    @classmethod
    def from_key(cls, key: str) -> DeploymentID:
        app, _, name = key.partition("#")
        return cls(app, name)

    def __str__(self) -> str:
        return self.key()


@dataclass(frozen=True)
class ReplicaAddress:
    """Where a running replica listens for direct connections."""

    replica_id: str
    host: str
    port: int
    node_id: str = ""


class ReplicaState(StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"


class DeploymentStatus(StrEnum):
    UPDATING = "UPDATING"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    DEPLOY_FAILED = "DEPLOY_FAILED"


class ApplicationStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    DEPLOYING = "DEPLOYING"
    RUNNING = "RUNNING"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    UNHEALTHY = "UNHEALTHY"
    DELETING = "DELETING"


NAMESPACE = "serve_core"
CONTROLLER_NAME = "SERVE_CORE_CONTROLLER"
CHECKPOINT_KEY = b"serve_core:checkpoint"
DEPLOYED_CONFIG_KEY = b"serve_core:deployed_config"  # the config file last deployed (`serve-core config`)
