"""Chaos scheduling: the experiment's method, its seed and a snapshot of the cluster in,
the ordered list of planned faults out. Pure: no I/O, no clock; the same inputs give the
same plan, so a run can be replayed and ``python -m chaos validate`` shows what will happen.

Each fault entry draws from random streams of its own (derived from the seed and its
index), so adding or editing one entry does not move the times or targets of another.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.errors import ExperimentError, Problem
from chaos.spec.experiment import (
    ANY,
    EVERY_NODE,
    EVERY_WORKER,
    RANDOM_WORKER,
    Experiment,
    Fault,
    Rollback,
)

TIME_DIGITS = 3  # planned times are rounded to milliseconds


class ScheduleError(ExperimentError):
    """The experiment does not fit the cluster it is planned against (a node or deployment
    it names is not there)."""


# -- the snapshot -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    name: str
    role: str  # "head" or "worker"
    alive: bool = True


@dataclass(frozen=True)
class DeploymentInfo:
    app: str
    name: str
    nodes: tuple[str, ...] = ()  # nodes with a replica of it (a node once per replica)


@dataclass(frozen=True)
class Snapshot:
    """What the schedule needs to know of the cluster. ``deployments`` is None when unknown
    (planning without a cluster): deployment names are then not checked."""

    nodes: tuple[NodeInfo, ...]
    deployments: tuple[DeploymentInfo, ...] | None = None

    @classmethod
    def assumed(cls, workers: int) -> Snapshot:
        """The nodes an embedded cluster with ``workers`` workers has: head, w1..wN."""
        return cls((NodeInfo("head", "head"),) + tuple(NodeInfo(f"w{i}", "worker") for i in range(1, workers + 1)))

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def workers(self) -> list[str]:
        return [n.name for n in self.nodes if n.role == "worker"]

    def node(self, name: str) -> NodeInfo | None:
        return next((n for n in self.nodes if n.name == name), None)

    def replica_nodes(self, deployment: str | None, app: str | None) -> list[str] | None:
        """Nodes hosting replicas that match (None when deployments are unknown)."""
        if self.deployments is None:
            return None
        return sorted({n for d in self.deployments if (deployment in (None, d.name)) and (app in (None, d.app))
                       for n in d.nodes})


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFault:
    """One fault to inject: when (seconds from the start of the load), what, on what."""

    at_s: float
    action: str
    label: str
    phase: str = "method"  # "method" or "rollback"
    index: int = 0  # the entry in method (or rollbacks)
    occurrence: int = 0  # the how-many-th start of that entry
    node: str | None = None
    deployment: str | None = None
    app: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None  # partition, netem, cpu-burn: how long it holds
    seed: int | None = None  # kill-replica: the choice among matching replicas
    restart_of: str | None = None  # a restart planned by kill-node's duration_s: what it follows

    @property
    def target(self) -> dict[str, Any]:
        return {k: v for k, v in (("node", self.node), ("app", self.app), ("deployment", self.deployment)) if v}

    @property
    def expected_s(self) -> float:
        """How long the injection is expected to take (the hold, or the GCS downtime)."""
        return float(self.duration_s or self.args.get("down_for_s") or 0.0)

    def describe(self) -> str:
        what = " ".join(f"{k}={v}" for k, v in self.target.items())
        extra = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(self.args.items())]
        if self.duration_s:
            extra.append(f"for {self.duration_s:g}s")
        if self.seed is not None:
            extra.append(f"seed={self.seed}")
        if self.restart_of:
            extra.append(f"after {self.restart_of}")
        return " ".join(x for x in (self.action, what) if x) + (f" ({', '.join(extra)})" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["description"] = self.describe()
        return d


def plan(experiment: Experiment, snapshot: Snapshot) -> list[PlannedFault]:
    """Every fault of the method, resolved against ``snapshot``, in the order they start."""
    out: list[PlannedFault] = []
    for i, fault in enumerate(experiment.method):
        times = fault_times(fault, experiment.during, _rng(experiment.seed, f"method[{i}]/times"))
        for k, t in enumerate(times):
            rng = _rng(experiment.seed, f"method[{i}]/{k}/target")
            for node in resolve_nodes(fault, snapshot, rng, f"method[{i}].target.node"):
                out += _planned(fault, i, k, t, node, rng)
    out.sort(key=lambda p: (p.at_s, p.restart_of is None, p.index, p.occurrence, p.node or ""))
    return out


def plan_rollbacks(experiment: Experiment, snapshot: Snapshot) -> list[PlannedFault]:
    """The rollbacks, resolved against a snapshot taken when they run (in document order)."""
    out: list[PlannedFault] = []
    for i, rb in enumerate(experiment.rollbacks):
        if rb.action == "redeploy":
            out.append(PlannedFault(0.0, "redeploy", "redeploy", phase="rollback", index=i))
            continue
        rng = _rng(experiment.seed, f"rollbacks[{i}]/target")
        for node in _nodes(rb.target.node, snapshot, rng, f"rollbacks[{i}].target.node", rb):
            if rb.action == "restart-node" and rb.only_if_down:
                info = snapshot.node(node) if node else None
                if info is not None and info.alive:
                    continue
            out.append(PlannedFault(0.0, rb.action, rb.action, phase="rollback", index=i, node=node))
    return out


def fault_times(fault: Fault, during: tuple[float, float], rng: random.Random) -> list[float]:
    """Start times (seconds from the start of the load) of one method entry."""
    sched = fault.schedule
    if sched.at_s is not None:
        return [round(sched.at_s, TIME_DIGITS)]
    if sched.every_s is not None:
        return [round(t, TIME_DIGITS) for t in sched.every_times(during)]
    assert sched.random is not None
    first, last, _ = fault.start_bounds(during)
    gap = fault.random_gap_s
    if last < first:
        return []
    times: list[float] = []
    if sched.random.count is not None:
        n = sched.random.count
        room = max(0.0, (last - first) - (n - 1) * gap)
        draws = sorted(rng.uniform(0.0, room) for _ in range(n))
        times = [first + u + j * gap for j, u in enumerate(draws)]
    else:
        assert sched.random.rate_per_min is not None
        rate_per_s = sched.random.rate_per_min / 60.0
        t = first + rng.expovariate(rate_per_s)
        while t <= last:
            times.append(t)
            t += gap + rng.expovariate(rate_per_s)
    return [round(min(max(t, first), last), TIME_DIGITS) for t in times]


def resolve_nodes(fault: Fault, snapshot: Snapshot, rng: random.Random, path: str) -> list[str | None]:
    """The nodes one start of ``fault`` hits (None: the fault needs no node, or kill-replica
    may pick a replica anywhere)."""
    return _nodes(fault.target.node, snapshot, rng, path, fault)


def _nodes(selector: str | None, snapshot: Snapshot, rng: random.Random, path: str,
           entry: Fault | Rollback) -> list[str | None]:
    action = entry.action
    kill_replica = action == "kill-replica"
    if kill_replica:
        _check_deployment(entry, snapshot, path.rsplit(".", 1)[0])
    if selector is None:
        return [None]
    if action in ("kill-controller", "kill-gcs"):  # "head" is allowed and means the same
        return [None]
    workers = snapshot.workers
    if selector == EVERY_WORKER:
        return _nonempty(list(workers), path, selector, "the cluster has no worker nodes")
    if selector == EVERY_NODE:
        return list(snapshot.names)
    if selector == RANDOM_WORKER:
        pool = list(workers)
        if kill_replica:
            hosting = snapshot.replica_nodes(entry.target.deployment, entry.target.app)
            if hosting is not None:
                pool = [w for w in workers if w in hosting]
        _nonempty(pool, path, selector, "no worker node hosts a matching replica" if kill_replica and workers
                  else "the cluster has no worker nodes")
        return [rng.choice(pool)]
    if selector == ANY:
        return [None] if kill_replica else [rng.choice(snapshot.names)]
    if snapshot.node(selector) is None:
        raise ScheduleError(Problem(path, selector, f"the cluster has no such node; it has {', '.join(snapshot.names)}"))
    return [selector]


def _check_deployment(entry: Fault | Rollback, snapshot: Snapshot, path: str) -> None:
    if snapshot.deployments is None:
        return
    sel = entry.target
    if sel.deployment is not None and sel.deployment not in {d.name for d in snapshot.deployments}:
        names = sorted({d.name for d in snapshot.deployments}) or ["(none deployed)"]
        raise ScheduleError(Problem(f"{path}.deployment", sel.deployment,
                                    f"no such deployment on the cluster; it runs {', '.join(names)}"))
    if sel.app is not None and sel.app not in {d.app for d in snapshot.deployments}:
        apps = sorted({d.app for d in snapshot.deployments}) or ["(none deployed)"]
        raise ScheduleError(Problem(f"{path}.app", sel.app, f"no such application on the cluster; it runs "
                                                            f"{', '.join(apps)}"))


def _nonempty(pool: list[str], path: str, selector: str, why: str) -> list[str | None]:
    if not pool:
        raise ScheduleError(Problem(path, selector, f"{why}: name a node instead"))
    return list(pool)


def _planned(fault: Fault, i: int, k: int, t: float, node: str | None, rng: random.Random) -> list[PlannedFault]:
    args = fault.args.given()
    if fault.action == "kill-gcs":
        args.setdefault("down_for_s", fault.length_s)
    seed = rng.randrange(2**31) if fault.action == "kill-replica" else None
    hold = fault.duration_s if fault.action != "kill-node" else None
    first = PlannedFault(t, fault.action, fault.label, "method", i, k, node, fault.target.deployment,
                         fault.target.app, args, hold, seed)
    out = [first]
    if fault.action == "kill-node" and fault.duration_s:
        out.append(PlannedFault(round(t + fault.duration_s, TIME_DIGITS), "restart-node", f"{fault.label} (restart)",
                                "method", i, k, node, restart_of=f"kill-node at {t:g}s"))
    return out


def _rng(seed: int, stream: str) -> random.Random:
    return random.Random(f"chaos/{seed}/{stream}")  # str seeds hash with SHA-512: stable across processes
