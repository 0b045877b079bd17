"""Target and actual state of one deployment, and the pure decisions between them.

The controller owns one DeploymentState per deployment; ``plan`` compares the target
with the replicas it knows and returns what to start and what to stop. It does no
I/O, so rolling updates and scaling are testable without Ray.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from serve_core.config import DeploymentOptions
from serve_core.ids import DeploymentID, DeploymentStatus, ReplicaAddress, ReplicaState

MAX_START_FAILURES = 3  # in a row: the deployment failed, or a rollout is rolled back
# Options that take effect without restarting replicas.
LIVE_OPTIONS = ("user_config", "num_replicas", "autoscaling_config", "max_surge_fraction")


@dataclass
class DeploymentTarget:
    """What the user asked for; this is what the checkpoint stores."""

    dep: DeploymentID
    def_bytes: bytes
    init_bytes: bytes
    options: dict[str, Any]
    target_replicas: int
    code_hash: str = ""  # stable across driver processes (api.code_hash); def_bytes is not

    @property
    def opts(self) -> DeploymentOptions:
        return DeploymentOptions.model_validate(self.options)

    def code_version(self) -> str:
        """Changes of anything but LIVE_OPTIONS restart replicas."""
        o = {k: v for k, v in self.options.items() if k not in LIVE_OPTIONS}
        h = hashlib.sha256(self.code_hash.encode() or self.def_bytes)
        h.update(self.init_bytes)
        h.update(json.dumps(o, sort_keys=True, default=str).encode())
        return h.hexdigest()[:12]

    def config_version(self) -> str:
        return hashlib.sha256(json.dumps(self.options.get("user_config"), sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class ReplicaRecord:
    replica_id: str
    actor_name: str
    version: str
    config_version: str
    state: ReplicaState = ReplicaState.STARTING
    handle: Any = None
    addr: ReplicaAddress | None = None
    pid: int = 0
    node_id: str = ""
    metrics_port: int = 0
    started_at: float = 0.0
    model_ids: tuple[str, ...] = ()  # multiplexed models it holds, as it last reported
    models_seq: int = 0  # the number of that report
    tasks: list[Any] = field(default_factory=list)

    def to_checkpoint(self) -> dict[str, Any]:
        return {"replica_id": self.replica_id, "actor_name": self.actor_name, "version": self.version, "config_version": self.config_version}


@dataclass
class Plan:
    start: int = 0
    stop: list[str] = field(default_factory=list)
    reconfigure: list[str] = field(default_factory=list)


def plan(target: DeploymentTarget | None, replicas: dict[str, ReplicaRecord], failed: bool) -> Plan:
    """Replicas to start, stop and reconfigure to move toward ``target``.

    Rolling update: new-version replicas start up to a surge of ``max_surge_fraction``
    (20%, at least one) above the target; an old one stops only when a new one runs (it
    passed its first health check) in its place.
    """
    live = [r for r in replicas.values() if r.state != ReplicaState.STOPPING]
    if target is None:  # deleted
        return Plan(stop=[r.replica_id for r in live])
    want = target.target_replicas
    version, cfg = target.code_version(), target.config_version()
    new = [r for r in live if r.version == version]
    old = [r for r in live if r.version != version]
    new_running = [r for r in new if r.state == ReplicaState.RUNNING]
    p = Plan()
    if len(new) > want:  # scale in: starting ones first, then the newest
        extra = sorted(new, key=lambda r: (r.state == ReplicaState.RUNNING, -r.started_at))
        p.stop += [r.replica_id for r in extra[: len(new) - want]]
    surge = max(1, math.ceil(target.options.get("max_surge_fraction", 0.2) * want))
    if not failed and len(new) < want:
        p.start = max(0, min(want - len(new), want + surge - len(new) - len(old)))
    if old:
        keep_old = max(0, want - len(new_running))
        by_age = sorted(old, key=lambda r: r.state == ReplicaState.RUNNING)  # starting ones go first
        p.stop += [r.replica_id for r in by_age[: max(0, len(old) - keep_old)]]
    p.reconfigure = [r.replica_id for r in new_running if r.config_version != cfg and r.replica_id not in p.stop]
    return p


def status(target: DeploymentTarget | None, replicas: dict[str, ReplicaRecord], failed: bool) -> DeploymentStatus:
    if failed:
        return DeploymentStatus.DEPLOY_FAILED
    if target is None:
        return DeploymentStatus.UPDATING
    version, cfg = target.code_version(), target.config_version()
    running = [
        r for r in replicas.values()
        if r.state == ReplicaState.RUNNING and r.version == version and r.config_version == cfg
    ]
    others = [r for r in replicas.values() if r not in running and r.state != ReplicaState.STOPPING]
    if len(running) == target.target_replicas and not others:
        return DeploymentStatus.HEALTHY
    return DeploymentStatus.UPDATING
