"""What the controller knows, in one plain mutable object the controller's parts share.

Target state (applications, deployment targets, the rollout a deployment would go back to)
is what the checkpoint keeps; actual state (replica records, failures, recently dead
replicas) is rebuilt from live actors after a restart.
"""

from __future__ import annotations

from typing import Any

from serve_core.control import deployment_state as ds
from serve_core.ids import DeploymentID


class App:
    def __init__(self, name: str, route_prefix: str | None, ingress: str, deployed_at: float) -> None:
        self.name, self.route_prefix, self.ingress = name, route_prefix, ingress
        self.deleting = False
        self.deployed_at = deployed_at


class ControlState:
    def __init__(self, http_options: dict[str, Any]) -> None:
        self.http_options = http_options
        self.apps: dict[str, App] = {}
        self.targets: dict[DeploymentID, ds.DeploymentTarget | None] = {}  # None: being deleted
        self.replicas: dict[DeploymentID, dict[str, ds.ReplicaRecord]] = {}
        self.failed: dict[DeploymentID, str] = {}
        # Replicas Ray reported dead, by deployment, with when: published for a while so that
        # callers fail (or retry) what those replicas held at once instead of waiting on TCP,
        # which never notices a node cut off the network.
        self.dead: dict[DeploymentID, dict[str, float]] = {}
        self.start_failures: dict[DeploymentID, int] = {}
        # A rollout's way back: the target that was fully rolled out when a code change
        # began, kept until no replica of another version is left.
        self.previous: dict[DeploymentID, ds.DeploymentTarget] = {}
        self.rolled_back: dict[DeploymentID, str] = {}  # why, until the next deploy
        self.unplaced: dict[DeploymentID, str] = {}  # why a replica waits for a node (max_replicas_per_node)


def target_from_doc(t: dict[str, Any]) -> ds.DeploymentTarget:
    t["dep"] = DeploymentID(**t["dep"]) if isinstance(t["dep"], dict) else t["dep"]
    return ds.DeploymentTarget(**t)
