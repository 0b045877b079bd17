"""The controller: one detached actor that moves actual state toward target state.

Its reconcile loop never dies. Target state is checkpointed to the GCS KV store on
every change; on restart the controller reloads it and re-adopts live replicas and
proxies by actor name instead of replacing them. Callers long-poll ``listen`` for
replica sets and keep the last one, so the data path does not need the controller.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
import uuid
from dataclasses import asdict
from typing import Any

from serve_core import autoscaler, cluster, metrics, warm_spares
from serve_core import deployment_state as ds
from serve_core.config import data_path_settings
from serve_core.ids import (
    CHECKPOINT_KEY,
    ApplicationStatus,
    DeploymentID,
    DeploymentStatus,
    ReplicaAddress,
    ReplicaState,
)
from serve_core.proxy_state import ProxyFleet

log = logging.getLogger("serve_core.controller")
LOOP_PERIOD_S = 0.1
REPLICA_PREFIX = "SERVE_CORE_REPLICA:"  # + deployment key + ":" + replica id
DEAD_KEPT_S = 60.0  # how long a dead replica stays in snapshots (a caller may be slow to poll)
DEMAND_FRESH_S = 2.0  # a caller's demand report counts this long (callers report every 0.5 s)


class _App:
    def __init__(self, name: str, route_prefix: str | None, ingress: str) -> None:
        self.name, self.route_prefix, self.ingress = name, route_prefix, ingress
        self.deleting = False
        self.deployed_at = time.time()


def _target(t: dict[str, Any]) -> ds.DeploymentTarget:
    t["dep"] = DeploymentID(**t["dep"]) if isinstance(t["dep"], dict) else t["dep"]
    return ds.DeploymentTarget(**t)


class Controller:
    def __init__(self, http_options: dict[str, Any]) -> None:
        self.http_options = http_options
        self.apps: dict[str, _App] = {}
        self.targets: dict[DeploymentID, ds.DeploymentTarget | None] = {}
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
        self.spares = warm_spares.WarmSpares(warm_spares.spares_per_node())
        self._spares_task: asyncio.Task[None] | None = None
        self.proxies = ProxyFleet(http_options, self._checkpoint, on_start=self.spares.placed)
        # Versions only need to differ; starting from the clock keeps a restarted
        # controller's versions apart from the ones callers already hold.
        self.version = time.time_ns() // 1000
        self._changed = asyncio.Event()
        self._dirty = False
        self._written = asyncio.Event()
        self._write_lock = asyncio.Lock()  # a shutdown deletes the checkpoint only between writes
        self._stopping = False
        self._shut_down = False
        self._restored = asyncio.Event()  # callers get no snapshot before re-adoption ends
        self.demand: dict[str, tuple[float, dict[str, int]]] = {}  # caller -> (when, demand per deployment)
        self.autoscalers: dict[DeploymentID, autoscaler.AutoscalerState] = {}
        self.started_at = time.monotonic()
        self.metrics_port = metrics.serve_metrics(self.http_options.get("metrics_host") or cluster.node_ip())
        adoptions = self._restore()
        loop = asyncio.get_event_loop()
        loop.create_task(self._finish_restore(adoptions))
        loop.create_task(self._run())
        loop.create_task(self._write_checkpoints())

    # -- checkpoint --------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Mark the checkpoint stale; the writer task stores it off the event loop."""
        self._dirty = True
        self._written.clear()

    async def _durable_checkpoint(self) -> None:
        """Return once the current target state is in the GCS (for deploy/delete)."""
        self._checkpoint()
        await asyncio.wait_for(self._written.wait(), 30)

    async def _write_checkpoints(self) -> None:
        loop = asyncio.get_event_loop()
        while True:
            if not self._dirty:
                await asyncio.sleep(0.02)
                continue
            async with self._write_lock:
                if self._shut_down:  # a write now would bring back what shutdown deleted
                    return
                self._dirty = False
                data = pickle.dumps(self._checkpoint_doc())
                try:
                    await loop.run_in_executor(None, cluster.kv_put, CHECKPOINT_KEY, data)
                    if not self._dirty:
                        self._written.set()
                    continue
                except Exception as e:  # GCS down: keep serving, write again shortly
                    self._dirty = True
                    log.warning("checkpoint write failed, will retry: %s", e)
            await asyncio.sleep(0.5)

    def _checkpoint_doc(self) -> dict[str, Any]:
        return {
            "http_options": self.http_options,
            "apps": {n: (a.route_prefix, a.ingress, a.deleting) for n, a in self.apps.items()},
            "targets": {d.key(): (asdict(t) if t else None) for d, t in self.targets.items()},
            "replicas": {d.key(): [r.to_checkpoint() for r in rs.values() if r.state != ReplicaState.STOPPING] for d, rs in self.replicas.items()},
            "proxies": self.proxies.checkpoint(),
            "previous": {d.key(): asdict(t) for d, t in self.previous.items()},
            "rolled_back": {d.key(): why for d, why in self.rolled_back.items()},
        }

    async def _finish_restore(self, adoptions: list[asyncio.Task[None]]) -> None:
        if adoptions:
            await asyncio.wait(adoptions, timeout=30)
        self._restored.set()
        self._publish()

    def _restore(self) -> list[asyncio.Task[None]]:
        """Reload target state and find live replicas and proxies by name."""
        adoptions: list[asyncio.Task[None]] = []
        raw = cluster.kv_get(CHECKPOINT_KEY)
        if not raw:
            return adoptions
        doc = pickle.loads(raw)
        self.http_options = self.proxies.http_options = doc["http_options"]
        for name, (prefix, ingress, deleting) in doc["apps"].items():
            self.apps[name] = _App(name, prefix, ingress)
            self.apps[name].deleting = deleting
        for key, t in doc["targets"].items():
            dep = DeploymentID.from_key(key)
            self.targets[dep] = _target(t) if t is not None else None
            self.replicas.setdefault(dep, {})
        self.previous = {DeploymentID.from_key(k): _target(t) for k, t in doc.get("previous", {}).items()}
        self.rolled_back = {DeploymentID.from_key(k): why for k, why in doc.get("rolled_back", {}).items()}
        for key, recs in doc["replicas"].items():
            dep = DeploymentID.from_key(key)
            for r in recs:
                rec = ds.ReplicaRecord(**r)
                rec.handle = cluster.get_actor(rec.actor_name)
                if rec.handle is not None:
                    self.replicas.setdefault(dep, {})[rec.replica_id] = rec
                    task = asyncio.get_event_loop().create_task(self._adopt(dep, rec))
                    rec.tasks.append(task)
                    adoptions.append(task)
        adoptions += self._adopt_orphans()
        self.proxies.restore(doc.get("proxies", {}))
        log.info("restored %d applications from checkpoint", len(self.apps))
        return adoptions

    # -- control loop ------------------------------------------------------------------

    async def _run(self) -> None:
        # Plan nothing before re-adoption ends: a replica not yet adopted (or one whose
        # version it has yet to report) would look missing, and be started twice.
        await self._restored.wait()
        while not self._stopping:
            start = time.perf_counter()
            try:
                await self._reconcile()
            except Exception:  # the loop never dies
                log.exception("reconcile pass failed")
            metrics.CONTROL_LOOP.observe(time.perf_counter() - start)
            await asyncio.sleep(LOOP_PERIOD_S)

    async def _reconcile(self) -> None:
        changed = False
        for dep in list(self.targets):
            target = self.targets[dep]
            if target is not None and self._autoscale(dep, target):
                changed = True
            recs = self.replicas.setdefault(dep, {})
            p = ds.plan(target, recs, dep in self.failed)
            for _ in range(p.start):
                assert target is not None
                self._start_replica(dep, target)
                changed = True
            for rid in p.stop:
                self._stop_replica(dep, recs[rid])
                changed = True
            for rid in p.reconfigure:
                self._reconfigure(dep, recs[rid], target)
            if target is None and not recs:
                del self.targets[dep]
                for kept in (self.replicas, self.failed, self.previous, self.rolled_back):
                    kept.pop(dep, None)
                changed = True
            if dep in self.previous and target is not None:
                version = target.code_version()
                if all(r.version == version for r in recs.values()):
                    del self.previous[dep]  # rolled out: no replica of another version is left
                    changed = True
            self._export(dep, target, recs)
        for name, app in list(self.apps.items()):
            if app.deleting and not any(d.app == name for d in self.targets):
                del self.apps[name]
                changed = True
        await self.proxies.reconcile()
        now = time.monotonic()
        idle = self._spares_task is None or self._spares_task.done()
        if idle and self.spares.due(self.proxies.node_info, now):  # not a task every pass
            self._spares_task = asyncio.get_event_loop().create_task(self.spares.refresh(self.proxies.node_info, now))
        if changed:
            self._checkpoint()

    def _autoscale(self, dep: DeploymentID, target: ds.DeploymentTarget) -> bool:
        """Apply the autoscaling policy to one deployment; True if its target changed."""
        cfg = target.opts.autoscaling_config
        if cfg is None:
            return False
        now = time.monotonic()
        state = self.autoscalers.get(dep)
        if state is None:
            state = self.autoscalers[dep] = autoscaler.AutoscalerState(created_at=self.started_at)
        key = dep.key()
        total = sum(d.get(key, 0) for when, d in self.demand.values() if now - when < DEMAND_FRESH_S)
        state.record(now, float(total), cfg.look_back_period_s)
        decision = autoscaler.decide(cfg, target.target_replicas, state, now)
        metrics.child(metrics.AUTOSCALER_DEMAND, dep.app, dep.name).set(total)
        metrics.child(metrics.AUTOSCALER_DESIRED, dep.app, dep.name).set(decision.desired)
        if decision.desired == target.target_replicas:
            return False
        log.info("autoscaling %s: %d -> %d replicas (%s, demand %d)", dep, target.target_replicas, decision.desired, decision.reason, total)
        metrics.child(metrics.AUTOSCALER_DECISIONS, dep.app, dep.name, decision.reason).inc()
        target.target_replicas = decision.desired
        return True

    async def record_models(self, key: str, replica_id: str, model_ids: list[str], seq: int = 0) -> None:
        """A replica's multiplexed models changed: callers prefer it for those ids. ``seq``
        orders one replica's reports (an older one arriving late is dropped)."""
        rec = self.replicas.get(DeploymentID.from_key(key), {}).get(replica_id)
        if rec is None or seq < rec.models_seq:
            return
        rec.models_seq = seq
        if rec.model_ids != tuple(model_ids):
            rec.model_ids = tuple(model_ids)
            self._publish()

    async def report_demand(self, caller_id: str, demand: dict[str, int]) -> None:
        """Callers' running plus queued requests per deployment (about 2 messages/s each)."""
        self.demand[caller_id] = (time.monotonic(), demand)
        stale = [c for c, (when, _) in self.demand.items() if time.monotonic() - when > 60]
        for c in stale:
            del self.demand[c]
        for key, n in demand.items():
            dep = DeploymentID.from_key(key)
            target = self.targets.get(dep)
            if n and target is not None and target.target_replicas == 0 and self._autoscale(dep, target):
                self._checkpoint()
                for _ in range(ds.plan(target, self.replicas.setdefault(dep, {}), dep in self.failed).start):
                    self._start_replica(dep, target)  # from zero: start now, not on the next pass

    def _export(self, dep: DeploymentID, target: ds.DeploymentTarget | None, recs: dict[str, ds.ReplicaRecord]) -> None:
        for state in ReplicaState:
            n = sum(1 for r in recs.values() if r.state == state)
            metrics.child(metrics.DEPLOYMENT_REPLICAS, dep.app, dep.name, state.value).set(n)
        metrics.child(metrics.DEPLOYMENT_TARGET, dep.app, dep.name).set(target.target_replicas if target else 0)

    def _publish(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    # -- replicas ----------------------------------------------------------------------

    def _start_replica(self, dep: DeploymentID, target: ds.DeploymentTarget) -> None:
        rid = uuid.uuid4().hex[:8]
        opts = target.opts
        spec = {
            "deployment_id": dep, "replica_id": rid, "def_bytes": target.def_bytes,
            "init_bytes": target.init_bytes, "max_ongoing": opts.max_ongoing_requests,
            "user_config": opts.user_config,
            "version": target.code_version(), "config_version": target.config_version(),
            "data_path": data_path_settings(self.http_options),
        }
        rec = ds.ReplicaRecord(rid, f"{REPLICA_PREFIX}{dep.key()}:{rid}", target.code_version(), target.config_version())
        rec.started_at = time.time()
        rec.handle = cluster.start_replica(rec.actor_name, spec, opts.actor_options())
        self.replicas[dep][rid] = rec
        rec.tasks.append(asyncio.get_event_loop().create_task(self._initialize(dep, rec)))

    async def _initialize(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        try:
            info = await rec.handle.initialize.remote(None)
        except Exception as e:
            if rec.state == ReplicaState.STOPPING:
                return
            n = self.start_failures[dep] = self.start_failures.get(dep, 0) + 1
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            log.warning("replica %s of %s failed to start (%d): %s", rec.replica_id, dep, n, msg)
            self.replicas.get(dep, {}).pop(rec.replica_id, None)
            cluster.kill(rec.handle)
            recs = self.replicas.get(dep, {}).values()
            if n >= ds.MAX_START_FAILURES and dep in self.previous and any(
                    r.state == ReplicaState.RUNNING and r.version != rec.version for r in recs):
                self._roll_back(dep, f"new replicas failed to start {n} times; last error: {msg}")
            elif n >= ds.MAX_START_FAILURES and not any(r.state == ReplicaState.RUNNING for r in recs):
                self.failed[dep] = f"replica constructor failed {n} times; last error: {e}"
            return
        self.spares.placed(info.get("node_id", ""))
        self._adopted(dep, rec, info)

    def _roll_back(self, dep: DeploymentID, why: str) -> None:
        """A rollout whose new replicas keep failing goes back to the version that was
        serving: plan() then stops the new ones and keeps (or restores) the old ones."""
        prev, current = self.previous.pop(dep), self.targets.get(dep)
        ac = prev.opts.autoscaling_config
        if ac is not None and current is not None:
            prev.target_replicas = min(ac.max_replicas, max(ac.min_replicas, current.target_replicas))
        self.targets[dep] = prev
        self.start_failures.pop(dep, None)
        self.rolled_back[dep] = f"rolled back to the previous version: {why}"
        log.warning("rollout of %s rolled back: %s", dep, why)
        metrics.child(metrics.ROLLBACKS, dep.app, dep.name).inc()
        self._publish()
        self._checkpoint()

    def _adopt_orphans(self) -> list[asyncio.Task[None]]:
        """Replicas started after the last checkpoint was written (the controller died in
        between): found by name, adopted like the rest, with the versions they report."""
        known = {r.actor_name for recs in self.replicas.values() for r in recs.values()}
        tasks = []
        for name in cluster.actor_names(REPLICA_PREFIX):
            key, _, rid = name[len(REPLICA_PREFIX):].rpartition(":")
            dep = DeploymentID.from_key(key)
            handle = None if name in known or self.targets.get(dep) is None else cluster.get_actor(name)
            if handle is None:
                continue
            rec = ds.ReplicaRecord(rid, name, "", "")  # versions come from the replica itself
            rec.handle = handle
            self.replicas.setdefault(dep, {})[rid] = rec
            rec.tasks.append(task := asyncio.get_event_loop().create_task(self._adopt(dep, rec)))
            tasks.append(task)
        if tasks:
            log.info("adopting %d replica(s) started after the last checkpoint", len(tasks))
        return tasks

    async def _adopt(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        try:
            info = await asyncio.wait_for(rec.handle.info.remote(), 30)
        except Exception as e:
            log.warning("could not re-adopt replica %s: %s", rec.replica_id, e)
            self.replicas.get(dep, {}).pop(rec.replica_id, None)
            cluster.kill(rec.handle)
            return
        if not info.get("ready", True):
            # Still starting when the last controller died: see it through rather than
            # start another, without holding up the restore on a slow constructor.
            rec.version = rec.version or info.get("version", "")
            rec.config_version = rec.config_version or info.get("config_version", "")
            rec.tasks.append(asyncio.get_event_loop().create_task(self._initialize(dep, rec)))
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
        self.start_failures.pop(dep, None)
        target = self.targets.get(dep)
        period = target.opts.health_check_period_s if target else 10.0
        timeout = target.opts.health_check_timeout_s if target else 30.0
        rec.tasks.append(asyncio.get_event_loop().create_task(self._watch_replica(dep, rec)))
        rec.tasks.append(asyncio.get_event_loop().create_task(self._health(dep, rec, period, timeout)))
        self._checkpoint()
        self._publish()

    async def _watch_replica(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        """Notice a replica's death at once (stopping it cancels this task)."""
        try:
            await cluster.until_dead(rec.handle)
        except asyncio.CancelledError:
            raise
        except Exception:
            pass
        self._lost(dep, rec, "died")

    async def _health(self, dep: DeploymentID, rec: ds.ReplicaRecord, period: float, timeout: float) -> None:
        while rec.state == ReplicaState.RUNNING:
            await asyncio.sleep(period)
            try:
                await asyncio.wait_for(rec.handle.check_health.remote(), timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                metrics.child(metrics.HEALTH_FAILURES, dep.app, dep.name).inc()
                log.warning("replica %s of %s failed its health check, replacing it: %s", rec.replica_id, dep, e)
                self._stop_replica(dep, rec)  # drained like any other; plan() starts a replacement
                return

    def _lost(self, dep: DeploymentID, rec: ds.ReplicaRecord, why: str) -> None:
        recs = self.replicas.get(dep, {})
        if recs.get(rec.replica_id) is not rec:
            return
        del recs[rec.replica_id]
        for t in rec.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        log.warning("replica %s of %s %s; replacing it", rec.replica_id, dep, why)
        if why == "died":
            self.dead.setdefault(dep, {})[rec.replica_id] = time.monotonic()
        self._publish()
        self._checkpoint()

    def _stop_replica(self, dep: DeploymentID, rec: ds.ReplicaRecord) -> None:
        was_running = rec.state == ReplicaState.RUNNING
        rec.state = ReplicaState.STOPPING
        for t in rec.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self._publish()  # callers stop sending before the drain starts
        target = self.targets.get(dep)
        opts = target.opts if target else None
        rec.tasks = [asyncio.get_event_loop().create_task(self._drain(dep, rec, was_running, opts))]

    async def _drain(self, dep: DeploymentID, rec: ds.ReplicaRecord, was_running: bool, opts: Any) -> None:
        wait_loop = opts.graceful_shutdown_wait_loop_s if opts else 2.0
        timeout = opts.graceful_shutdown_timeout_s if opts else 20.0
        try:
            if was_running:
                await asyncio.sleep(0.2)  # let callers learn the new replica set
                await asyncio.wait_for(rec.handle.drain.remote(wait_loop, timeout), timeout + 5)
        except Exception as e:
            log.info("drain of %s ended early: %s", rec.replica_id, e)
        finally:
            cluster.kill(rec.handle)
            self.replicas.get(dep, {}).pop(rec.replica_id, None)

    def _reconfigure(self, dep: DeploymentID, rec: ds.ReplicaRecord, target: ds.DeploymentTarget | None) -> None:
        if target is None or getattr(rec, "_reconfiguring", None) == target.config_version():
            return
        cfg = target.config_version()
        rec._reconfiguring = cfg  # type: ignore[attr-defined]

        async def run() -> None:
            try:
                await rec.handle.reconfigure.remote(target.opts.user_config)
                rec.config_version = cfg
            except Exception as e:
                log.warning("reconfigure of %s failed, replacing it: %s", rec.replica_id, e)
                self._stop_replica(dep, rec)
            finally:
                rec._reconfiguring = None  # type: ignore[attr-defined]
            self._checkpoint()

        rec.tasks.append(asyncio.get_event_loop().create_task(run()))

    # -- API (called by drivers and the CLI) -------------------------------------------

    async def deploy_app(self, name: str, route_prefix: str | None, ingress: str, deployments: list[dict[str, Any]]) -> None:
        for other in self.apps.values():
            if other.name != name and not other.deleting and route_prefix is not None and other.route_prefix == route_prefix:
                raise ValueError(
                    f"route_prefix {route_prefix!r} is already used by application {other.name!r}; "
                    "choose another prefix or delete that application"
                )
        app = self.apps.get(name)
        if app is None or app.deleting:
            app = self.apps[name] = _App(name, route_prefix, ingress)
        app.route_prefix, app.ingress, app.deployed_at = route_prefix, ingress, time.time()
        wanted = set()
        for d in deployments:
            dep = DeploymentID(name, d["name"])
            wanted.add(dep)
            new = ds.DeploymentTarget(dep, d["def_bytes"], d["init_bytes"], d["options"], d["target_replicas"],
                                      d.get("code_hash", ""))
            old = self.targets.get(dep)
            ac = new.opts.autoscaling_config
            if ac is not None and old is not None and old.opts.autoscaling_config is not None:
                # A redeploy keeps the size the autoscaler found, within the new bounds.
                new.target_replicas = min(ac.max_replicas, max(ac.min_replicas, old.target_replicas))
            if old is None or old.code_version() != new.code_version():
                self.failed.pop(dep, None)
                self.start_failures.pop(dep, None)
                if old is not None and dep not in self.previous and self.replicas.get(dep):
                    self.previous[dep] = old  # a rollout on top of a rollout goes back to the last whole one
            self.rolled_back.pop(dep, None)
            self.targets[dep] = new
            self.replicas.setdefault(dep, {})
        for dep in list(self.targets):
            if dep.app == name and dep not in wanted:
                self.targets[dep] = None
        self._publish()
        await self._durable_checkpoint()

    async def delete_app(self, name: str) -> None:
        app = self.apps.get(name)
        if app is None:
            return
        app.deleting = True
        for dep in list(self.targets):
            if dep.app == name:
                self.targets[dep] = None
        self._publish()
        await self._durable_checkpoint()

    async def listen(self, version: int, timeout_s: float) -> tuple[int, dict[str, Any]]:
        if not self._restored.is_set():
            await asyncio.wait_for(self._restored.wait(), timeout_s + 5)
        if version == self.version:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout_s)
            except TimeoutError:
                pass
        return self.version, self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        deployments = {}
        for dep, target in self.targets.items():
            if target is None:
                continue
            opts = target.opts
            recs = [r for r in self.replicas.get(dep, {}).values() if r.state == ReplicaState.RUNNING and r.addr]
            dead = self.dead.get(dep, {})
            for rid, at in list(dead.items()):
                if time.monotonic() - at > DEAD_KEPT_S:
                    del dead[rid]
            deployments[dep.key()] = {
                "replicas": [r.addr for r in recs], "dead": sorted(dead), "max_ongoing": opts.max_ongoing_requests,
                "max_queued": opts.max_queued_requests, "idempotent": opts.idempotent,
                "backpressure": opts.backpressure_config.model_dump() if opts.backpressure_config else None,
                "models": {r.replica_id: list(r.model_ids) for r in recs if r.model_ids},
            }
        routes = {
            a.route_prefix: (a.name, DeploymentID(a.name, a.ingress).key())
            for a in self.apps.values() if a.route_prefix is not None and not a.deleting
        }
        return {"deployments": deployments, "routes": routes, "data_path": data_path_settings(self.http_options)}

    async def get_http_options(self) -> dict[str, Any]:
        return self.http_options

    async def app_names(self) -> dict[str, str]:
        return {n: a.ingress for n, a in self.apps.items() if not a.deleting}

    async def status(self) -> dict[str, Any]:
        apps = {}
        for name, app in self.apps.items():
            deps = {}
            for dep, target in self.targets.items():
                if dep.app != name:
                    continue
                recs = self.replicas.get(dep, {})
                st = ds.status(target, recs, dep in self.failed or dep in self.rolled_back)
                counts: dict[str, int] = {}
                for r in recs.values():
                    counts[r.state.value] = counts.get(r.state.value, 0) + 1
                deps[dep.name] = {
                    "status": st.value, "message": self.failed.get(dep) or self.rolled_back.get(dep, ""),
                    "replica_states": counts,
                    "target_replicas": target.target_replicas if target else 0,
                    "replicas": [
                        {"replica_id": r.replica_id, "state": r.state.value, "pid": r.pid, "node_id": r.node_id,
                         "host": r.addr.host if r.addr else "", "port": r.addr.port if r.addr else 0,
                         "metrics_port": r.metrics_port}
                        for r in recs.values()
                    ],
                }
            statuses = {d["status"] for d in deps.values()}
            if app.deleting:
                app_status = ApplicationStatus.DELETING
            elif DeploymentStatus.DEPLOY_FAILED.value in statuses:
                app_status = ApplicationStatus.DEPLOY_FAILED
            elif statuses <= {DeploymentStatus.HEALTHY.value} and deps:
                app_status = ApplicationStatus.RUNNING
            else:
                app_status = ApplicationStatus.DEPLOYING
            message = "; ".join(f"{n}: {d['message']}" for n, d in deps.items() if d["message"])
            apps[name] = {
                "status": app_status.value, "message": message, "route_prefix": app.route_prefix,
                "ingress": app.ingress, "last_deployed_time_s": app.deployed_at, "deployments": deps,
            }
        return {"applications": apps, "proxies": await self.proxies.status(self.version), "controller": {"metrics_port": self.metrics_port}}

    async def metric_targets(self) -> list[str]:
        """host:port of every serve_core process's /metrics, for Prometheus discovery."""
        ip = cluster.node_ip()
        out = [f"{ip}:{self.metrics_port}"]
        out += self.proxies.metric_targets()
        for recs in self.replicas.values():
            out += [f"{r.addr.host}:{r.metrics_port}" for r in recs.values() if r.addr and r.metrics_port]
        return out

    async def graceful_shutdown(self, timeout_s: float = 30.0) -> None:
        for name in list(self.apps):
            await self.delete_app(name)
        deadline = time.monotonic() + timeout_s
        while self.targets and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._stopping = True
        names = self.proxies.kill_all()
        await asyncio.sleep(0)
        for recs in self.replicas.values():
            for r in recs.values():
                cluster.kill(r.handle)
        names += [r.actor_name for recs in self.replicas.values() for r in recs.values()]
        # Return only when they are gone, so their ports are free for whoever comes next.
        loop = asyncio.get_event_loop()
        deadline = time.monotonic() + 15
        while names and time.monotonic() < deadline:
            names = [n for n in names if await loop.run_in_executor(None, cluster.get_actor, n) is not None]
            if names:
                await asyncio.sleep(0.1)
        # A checkpoint left behind would make the next controller restore these options
        # (an earlier run's port) instead of its own.
        async with self._write_lock:
            self._shut_down = True
            try:
                cluster.kv_del(CHECKPOINT_KEY)
            except Exception as e:
                log.warning("could not delete checkpoint: %s", e)

    async def pid(self) -> int:
        import os

        return os.getpid()
