"""A replica's life as the controller drives it: start, adopt (after a controller restart),
watch and health-check, drain and stop, reconfigure; and the rollback when a new version's
replicas keep failing to start.

Each replica's background work (initialize, watch, health checks, drain) is a task kept on
its record, cancelled when the replica is stopped or lost. Every change of what callers
may route to is published (``publish``) and checkpointed (``checkpoint``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from serve_core import metrics
from serve_core.config import data_path_settings
from serve_core.control import deployment_state as ds
from serve_core.control.clock import Clock
from serve_core.control.placement import NO_NODE, choose_node
from serve_core.control.state import ControlState
from serve_core.control.warm_spares import WarmSpares
from serve_core.data.replica import ReplicaActor
from serve_core.ids import DeploymentID, ReplicaAddress, ReplicaState

log = logging.getLogger("serve_core.control.controller")
REPLICA_PREFIX = "SERVE_CORE_REPLICA:"  # + deployment key + ":" + replica id
ADOPT_TIMEOUT_S = 30.0
DRAIN_NOTICE_S = 0.2  # callers learn the new replica set before the drain starts


def _spawn(coro: Any) -> asyncio.Task[None]:
    return asyncio.get_event_loop().create_task(coro)


class ReplicaLifecycle:
    def __init__(self, state: ControlState, cluster: Any, clock: Clock, spares: WarmSpares,
                 publish: Callable[[], None], checkpoint: Callable[[], None],
                 nodes: Callable[[], list[dict[str, Any]]] = list) -> None:
        self.state, self.cluster, self.clock, self.spares = state, cluster, clock, spares
        self.publish, self.checkpoint = publish, checkpoint
        self.nodes = nodes  # the alive nodes, as of the controller's last look

    # -- start ---------------------------------------------------------------------------

    def start(self, dep: DeploymentID, target: ds.DeploymentTarget) -> bool:
        """Start one replica of ``dep``; False when max_replicas_per_node leaves no node for it."""
        opts = target.opts
        actor_options = opts.actor_options()
        node = self._place(dep, float(actor_options.get("num_cpus", 1)), opts.max_replicas_per_node)
        if node is None and opts.max_replicas_per_node is not None:
            self.state.unplaced[dep] = NO_NODE.format(cap=opts.max_replicas_per_node)
            return False
        self.state.unplaced.pop(dep, None)
        rid = uuid.uuid4().hex[:8]
        spec = {
            "deployment_id": dep, "replica_id": rid, "def_bytes": target.def_bytes,
            "init_bytes": target.init_bytes, "max_ongoing": opts.max_ongoing_requests,
            "user_config": opts.user_config,
            "version": target.code_version(), "config_version": target.config_version(),
            "data_path": data_path_settings(self.state.http_options),
        }
        rec = ds.ReplicaRecord(rid, f"{REPLICA_PREFIX}{dep.key()}:{rid}", target.code_version(), target.config_version())
        rec.started_at = self.clock.time()
        rec.node_id = node or ""  # where it was asked to go; initialize() reports where it went
        rec.handle = self.cluster.start_replica(ReplicaActor, rec.actor_name, spec, actor_options, node_id=node)
        self.state.replicas[dep][rid] = rec
        rec.tasks.append(_spawn(self._initialize(dep, rec)))
        return True

    def _place(self, dep: DeploymentID, num_cpus: float, cap: int | None) -> str | None:
        live = [r for recs in self.state.replicas.values() for r in recs.values() if r.state != ReplicaState.STOPPING]
        siblings = [r.node_id for r in self.state.replicas.get(dep, {}).values() if r.state != ReplicaState.STOPPING]
        return choose_node(self.nodes(), siblings, [r.node_id for r in live], num_cpus, cap)

    async def _initialize(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        state = self.state
        try:
            info = await rec.handle.initialize(None)
        except Exception as e:
            if rec.state == ReplicaState.STOPPING:
                return
            n = state.start_failures[dep] = state.start_failures.get(dep, 0) + 1
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            log.warning("replica %s of %s failed to start (%d): %s", rec.replica_id, dep, n, msg)
            state.replicas.get(dep, {}).pop(rec.replica_id, None)
            self.cluster.kill(rec.handle)
            recs = state.replicas.get(dep, {}).values()
            if n >= ds.MAX_START_FAILURES and dep in state.previous and any(
                    r.state == ReplicaState.RUNNING and r.version != rec.version for r in recs):
                self.roll_back(dep, f"new replicas failed to start {n} times; last error: {msg}")
            elif n >= ds.MAX_START_FAILURES and not any(r.state == ReplicaState.RUNNING for r in recs):
                state.failed[dep] = f"replica constructor failed {n} times; last error: {e}"
            return
        self.spares.placed(info.get("node_id", ""))
        self._adopted(dep, rec, info)

    def roll_back(self, dep: DeploymentID, why: str) -> None:
        """A rollout whose new replicas keep failing goes back to the version that was
        serving: plan() then stops the new ones and keeps (or restores) the old ones."""
        state = self.state
        prev, current = state.previous.pop(dep), state.targets.get(dep)
        ac = prev.opts.autoscaling_config
        if ac is not None and current is not None:
            prev.target_replicas = min(ac.max_replicas, max(ac.min_replicas, current.target_replicas))
        state.targets[dep] = prev
        state.start_failures.pop(dep, None)
        state.rolled_back[dep] = f"rolled back to the previous version: {why}"
        log.warning("rollout of %s rolled back: %s", dep, why)
        metrics.child(metrics.ROLLBACKS, dep.app, dep.name).inc()
        self.publish()
        self.checkpoint()

    # -- adopt (a restarted controller) ----------------------------------------------------

    def adopt_checkpointed(self, records: list[tuple[DeploymentID, ds.ReplicaRecord]]) -> list[asyncio.Task[None]]:
        """The checkpoint's replicas that are still alive, found by actor name and adopted."""
        tasks = []
        for dep, rec in records:
            rec.handle = self.cluster.get_replica(rec.actor_name)
            if rec.handle is not None:
                self.state.replicas.setdefault(dep, {})[rec.replica_id] = rec
                rec.tasks.append(task := _spawn(self._adopt(dep, rec)))
                tasks.append(task)
        return tasks

    def adopt_orphans(self) -> list[asyncio.Task[None]]:
        """Replicas started after the last checkpoint was written (the controller died in
        between): found by name, adopted like the rest, with the versions they report."""
        state = self.state
        known = {r.actor_name for recs in state.replicas.values() for r in recs.values()}
        tasks = []
        for name in self.cluster.actor_names(REPLICA_PREFIX):
            key, _, rid = name[len(REPLICA_PREFIX):].rpartition(":")
            dep = DeploymentID.from_key(key)
            handle = None if name in known or state.targets.get(dep) is None else self.cluster.get_replica(name)
            if handle is None:
                continue
            rec = ds.ReplicaRecord(rid, name, "", "")  # versions come from the replica itself
            rec.handle = handle
            state.replicas.setdefault(dep, {})[rid] = rec
            rec.tasks.append(task := _spawn(self._adopt(dep, rec)))
            tasks.append(task)
        if tasks:
            log.info("adopting %d replica(s) started after the last checkpoint", len(tasks))
        return tasks

    async def _adopt(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        try:
            info = await asyncio.wait_for(rec.handle.info(), ADOPT_TIMEOUT_S)
        except Exception as e:
            log.warning("could not re-adopt replica %s: %s", rec.replica_id, e)
            self.state.replicas.get(dep, {}).pop(rec.replica_id, None)
            self.cluster.kill(rec.handle)
            return
        if not info.get("ready", True):
            # Still starting when the last controller died: see it through rather than
            # start another, without holding up the restore on a slow constructor.
            rec.version = rec.version or info.get("version", "")
            rec.config_version = rec.config_version or info.get("config_version", "")
            rec.tasks.append(_spawn(self._initialize(dep, rec)))
            return
        self._adopted(dep, rec, info)

    def _adopted(self, dep: DeploymentID, rec: ds.ReplicaRecord, info: dict[str, Any]) -> None:
        if rec.state == ReplicaState.STOPPING:
            return
        rec.addr = ReplicaAddress(rec.replica_id, info["host"], info["port"], info.get("node_id", ""))
        rec.version = rec.version or info.get("version", "")
        rec.config_version = rec.config_version or info.get("config_version", "")
        rec.pid, rec.node_id, rec.metrics_port = info["pid"], info.get("node_id", ""), info["metrics_port"]
        rec.model_ids = tuple(info.get("model_ids", ()))
        rec.state = ReplicaState.RUNNING
        self.state.start_failures.pop(dep, None)
        target = self.state.targets.get(dep)
        period = target.opts.health_check_period_s if target else 10.0
        timeout = target.opts.health_check_timeout_s if target else 30.0
        rec.tasks.append(_spawn(self._watch(dep, rec)))
        rec.tasks.append(_spawn(self._health(dep, rec, period, timeout)))
        self.checkpoint()
        self.publish()

    # -- health --------------------------------------------------------------------------

    async def _watch(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        """Notice a replica's death at once (stopping it cancels this task)."""
        try:
            await rec.handle.until_dead()
        except asyncio.CancelledError:
            raise
        except Exception:
            pass
        self.lost(dep, rec, "died")

    async def _health(self, dep: DeploymentID, rec: ds.ReplicaRecord, period: float, timeout: float) -> None:
        while rec.state == ReplicaState.RUNNING:
            await asyncio.sleep(period)
            try:
                await asyncio.wait_for(rec.handle.check_health(), timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                metrics.child(metrics.HEALTH_FAILURES, dep.app, dep.name).inc()
                log.warning("replica %s of %s failed its health check, replacing it: %s", rec.replica_id, dep, e)
                self.stop(dep, rec)  # drained like any other; plan() starts a replacement
                return

    def lost(self, dep: DeploymentID, rec: ds.ReplicaRecord, why: str) -> None:
        recs = self.state.replicas.get(dep, {})
        if recs.get(rec.replica_id) is not rec:
            return
        del recs[rec.replica_id]
        for t in rec.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        log.warning("replica %s of %s %s; replacing it", rec.replica_id, dep, why)
        if why == "died":
            self.state.dead.setdefault(dep, {})[rec.replica_id] = self.clock.monotonic()
        self.publish()
        self.checkpoint()

    # -- stop, reconfigure -----------------------------------------------------------------

    def stop(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        was_running = rec.state == ReplicaState.RUNNING
        rec.state = ReplicaState.STOPPING
        for t in rec.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.publish()  # callers stop sending before the drain starts
        target = self.state.targets.get(dep)
        opts = target.opts if target else None
        rec.tasks = [_spawn(self._drain(dep, rec, was_running, opts))]

    async def _drain(self, dep: DeploymentID, rec: ds.ReplicaRecord, was_running: bool, opts: Any) -> None:
        wait_loop = opts.graceful_shutdown_wait_loop_s if opts else 2.0
        timeout = opts.graceful_shutdown_timeout_s if opts else 20.0
        try:
            if was_running:
                await asyncio.sleep(DRAIN_NOTICE_S)
                await asyncio.wait_for(rec.handle.drain(wait_loop, timeout), timeout + 5)
        except Exception as e:
            log.info("drain of %s ended early: %s", rec.replica_id, e)
        finally:
            self.cluster.kill(rec.handle)
            self.state.replicas.get(dep, {}).pop(rec.replica_id, None)

    def reconfigure(self, dep: DeploymentID, rec: ds.ReplicaRecord, target: ds.DeploymentTarget | None) -> None:
        if target is None or getattr(rec, "_reconfiguring", None) == target.config_version():
            return
        cfg = target.config_version()
        rec._reconfiguring = cfg  # type: ignore[attr-defined]

        async def run() -> None:
            try:
                await rec.handle.reconfigure(target.opts.user_config)
                rec.config_version = cfg
            except Exception as e:
                log.warning("reconfigure of %s failed, replacing it: %s", rec.replica_id, e)
                self.stop(dep, rec)
            finally:
                rec._reconfiguring = None  # type: ignore[attr-defined]
            self.checkpoint()

        rec.tasks.append(_spawn(run()))
