"""The state file: everything `up` started and everything `status` and `down` need.

``<root>/<name>/state.json`` (mode 0600: it holds the Ray token and the Redis password)
lists the plan (addresses, ports), the secrets, and every process started, with its pid,
its start time (so that a reused pid is never mistaken for ours), command and role. It is
rewritten atomically after each step of `up`, so `down` can undo a half-finished `up`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

from embedded_cluster.errors import LocalClusterError
from embedded_cluster.layout import ClusterPlan

DEFAULT_ROOT = "/tmp/serve_core_cluster"
STATE_FILE = "state.json"
VERSION = 1


@dataclass
class ProcessRecord:
    role: str  # "redis", "head", "worker", "prometheus", "targets"
    name: str  # unique: "redis", "head", "w1", ...
    pid: int
    start_time: int  # /proc/<pid>/stat field 22; 0 if unknown
    command: list[str]
    log: str
    namespace: str | None = None
    children: dict[str, dict[str, int]] = field(default_factory=dict)  # {"raylet": {"pid", "start_time"}, ...}


class ClusterState:
    """A cluster's plan, secrets and processes; plain mutable state saved as JSON."""

    def __init__(self, plan: ClusterPlan, state_dir: str, token: str, redis_password: str) -> None:
        self.plan = plan
        self.state_dir = state_dir
        self.token = token
        self.redis_password = redis_password
        self.processes: list[ProcessRecord] = []
        self.netns_created: list[str] = []  # namespaces, so down removes exactly these
        self.links_created: list[str] = []  # bridge and host-side veths
        self.forward_rule: list[str] = []  # the iptables rule spec, once inserted
        self.node_ids: dict[str, str] = {}  # node name -> Ray node id
        self.created_at = 0.0
        self.ready = False  # set when up finished

    # -- paths ---------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return os.path.join(self.state_dir, STATE_FILE)

    def sub(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    def ray_temp_dir(self, node: str) -> str:
        """Each node its own Ray temp dir: nodes sharing one race for socket names.
        Short, since Ray's unix socket paths (at most 107 bytes) live under it."""
        return self.sub("ray", node)

    @property
    def logs_dir(self) -> str:
        return self.sub("logs")

    # -- processes -----------------------------------------------------------------------

    def add(self, record: ProcessRecord) -> None:
        self.processes = [p for p in self.processes if p.name != record.name] + [record]

    def process(self, name: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.name == name), None)

    # -- serialization -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "name": self.plan.name,
            "mode": self.plan.mode,
            "state_dir": self.state_dir,
            "created_at": self.created_at,
            "ready": self.ready,
            "head_address": self.plan.gcs_address,
            "redis_address": self.plan.redis_address,
            "prometheus_url": self.plan.prometheus_url,
            "ray_auth_token": self.token,
            "redis_password": self.redis_password,
            "plan": self.plan.to_dict(),
            "processes": [asdict(p) for p in self.processes],
            "netns_created": list(self.netns_created),
            "links_created": list(self.links_created),
            "forward_rule": list(self.forward_rule),
            "node_ids": dict(self.node_ids),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterState:
        if d.get("version") != VERSION:
            raise ValueError(f"state file version {d.get('version')!r}, expected {VERSION}")
        s = cls(ClusterPlan.from_dict(d["plan"]), d["state_dir"], d["ray_auth_token"], d["redis_password"])
        s.processes = [ProcessRecord(**p) for p in d.get("processes", [])]
        s.netns_created = list(d.get("netns_created", []))
        s.links_created = list(d.get("links_created", []))
        s.forward_rule = list(d.get("forward_rule", []))
        s.node_ids = dict(d.get("node_ids", {}))
        s.created_at = float(d.get("created_at", 0.0))
        s.ready = bool(d.get("ready", False))
        return s

    def save(self) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        write_atomic(self.path, json.dumps(self.to_dict(), indent=2) + "\n", mode=0o600)


def state_dir(root: str, name: str) -> str:
    return os.path.join(root, name)


def load(root: str, name: str) -> ClusterState | None:
    """The state of cluster ``name``, or None if there is no state file."""
    path = os.path.join(state_dir(root, name), STATE_FILE)
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        raise LocalClusterError(
            f"cannot read the state file {path}", str(e),
            "stop what it lists by hand, or delete it if nothing of the cluster runs any more",
        ) from None
    try:
        return ClusterState.from_dict(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise LocalClusterError(
            f"the state file {path} is not one this version writes", f"{type(e).__name__}: {e}",
            "bring the cluster down with the serve-core version that started it, or delete the file",
        ) from None


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Write a file so that readers see the old or the new content, never a part."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def require_state(ns: Any) -> ClusterState:
    """The state of the cluster a command names (``ns.state_root``, ``ns.name``), or an error naming the fix."""
    state = load(ns.state_root, ns.name)
    if state is None:
        raise LocalClusterError(
            f"no cluster named {ns.name!r} is up", f"there is no state file in {state_dir(ns.state_root, ns.name)}",
            f"start one with `serve-core cluster up --name {ns.name}`",
        )
    return state
