"""The controller: one detached actor that moves actual state toward target state.

Its reconcile loop never dies. Each pass, per deployment: the scale step (``scale_step``)
sets the target replica count, ``deployment_state.plan`` says which replicas to start,
stop or reconfigure, and ``replica_lifecycle`` carries that out; then the proxy fleet
and the warm spares are brought up to date. Target state is checkpointed to the GCS KV
store on every change (``checkpoint``); on restart the controller reloads it and
re-adopts live replicas and proxies by actor name instead of replacing them. Callers
long-poll ``listen`` for replica sets and keep the last one, so the data path does not
need the controller.

Ray is reached through ``cluster`` (``serve_core.ray_seam`` unless a test passes a fake)
and time through ``clock`` (real unless a test passes a virtual one).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from serve_core import log_setup, metrics, ray_seam
from serve_core.control import autoscaler, checkpoint, warm_spares
from serve_core.control import deployment_state as ds
from serve_core.control import status as status_doc
from serve_core.control.clock import Clock
from serve_core.control.proxy_fleet import ProxyFleet
from serve_core.control.replica_lifecycle import REPLICA_PREFIX, ReplicaLifecycle
from serve_core.control.scale_step import DEMAND_FRESH_S, fresh_demand, scale_step
from serve_core.control.state import App, ControlState
from serve_core.control.status import DEAD_KEPT_S
from serve_core.ids import DeploymentID, ReplicaState

__all__ = ["DEAD_KEPT_S", "DEMAND_FRESH_S", "LOOP_PERIOD_S", "REPLICA_PREFIX", "Controller"]

log = logging.getLogger("serve_core.control.controller")
LOOP_PERIOD_S = 0.1
DEMAND_KEPT_S = 60.0  # a caller silent this long is forgotten
SHUTDOWN_GONE_S = 15.0  # how long shutdown waits for its actors' names to disappear


class Controller:
    def __init__(self, http_options: dict[str, Any], clock: Clock | None = None, cluster: Any = None) -> None:
        log_setup.apply(http_options.get("logging_config"))
        self.clock = clock or Clock()
        self.cluster = cluster or ray_seam  # or a fake of it (tests)
        self.state = ControlState(http_options)
        self.spares = warm_spares.WarmSpares(warm_spares.spares_per_node(), self.cluster)
        self._spares_task: asyncio.Task[None] | None = None
        self.proxies = ProxyFleet(http_options, self._checkpoint, on_start=self.spares.placed,
                                  cluster=self.cluster, clock=self.clock)
        self.checkpoints = checkpoint.CheckpointWriter(
            lambda: checkpoint.document(self.state, self.proxies.checkpoint()), self.cluster.kv_put, self.cluster.kv_del)
        self.lifecycle = ReplicaLifecycle(self.state, self.cluster, self.clock, self.spares, self._publish, self._checkpoint,
                                          nodes=lambda: self.proxies.node_info)
        # Versions only need to differ; starting from the clock keeps a restarted
        # controller's versions apart from the ones callers already hold.
        self.version = int(self.clock.time() * 1_000_000)
        self._changed = asyncio.Event()
        self._stopping = False
        self._restored = asyncio.Event()  # callers get no snapshot before re-adoption ends
        self.demand: dict[str, tuple[float, dict[str, int]]] = {}  # caller -> (when, demand per deployment)
        self.autoscalers: dict[DeploymentID, autoscaler.AutoscalerState] = {}
        self.started_at = self.clock.monotonic()
        self.metrics_port = metrics.serve_metrics(http_options.get("metrics_host") or self.cluster.node_ip())
        adoptions = self._restore()
        loop = asyncio.get_event_loop()
        loop.create_task(self._finish_restore(adoptions))
        loop.create_task(self._run())
        loop.create_task(self.checkpoints.run())

    # The state the API and the tests read.
    @property
    def http_options(self) -> dict[str, Any]:
        return self.state.http_options

    @property
    def apps(self) -> dict[str, App]:
        return self.state.apps

    @property
    def targets(self) -> dict[DeploymentID, ds.DeploymentTarget | None]:
        return self.state.targets

    @property
    def replicas(self) -> dict[DeploymentID, dict[str, ds.ReplicaRecord]]:
        return self.state.replicas

    @property
    def previous(self) -> dict[DeploymentID, ds.DeploymentTarget]:
        return self.state.previous

    def _checkpoint(self) -> None:
        self.checkpoints.mark()

    def _publish(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    # -- restart -------------------------------------------------------------------------

    def _restore(self) -> list[asyncio.Task[None]]:
        """Reload target state and find live replicas and proxies by name."""
        doc = checkpoint.load(self.cluster.kv_get)
        if doc is None:
            return []
        records = checkpoint.restore(self.state, doc, self.clock.time())
        self.proxies.http_options = self.state.http_options
        adoptions = self.lifecycle.adopt_checkpointed(records)
        adoptions += self.lifecycle.adopt_orphans()
        self.proxies.restore(doc.get("proxies", {}))
        log.info("restored %d applications from checkpoint", len(self.state.apps))
        return adoptions

    async def _finish_restore(self, adoptions: list[asyncio.Task[None]]) -> None:
        if adoptions:
            await asyncio.wait(adoptions, timeout=30)
        self._restored.set()
        self._publish()

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
        state, changed = self.state, False
        for dep in list(state.targets):
            target = state.targets[dep]
            if target is not None and self._autoscale(dep, target):
                changed = True
            recs = state.replicas.setdefault(dep, {})
            p = ds.plan(target, recs, dep in state.failed)
            for _ in range(p.start):
                assert target is not None
                if not self.lifecycle.start(dep, target):
                    break  # no node has room under max_replicas_per_node: the next pass tries again
                changed = True
            for rid in p.stop:
                self.lifecycle.stop(dep, recs[rid])
                changed = True
            for rid in p.reconfigure:
                self.lifecycle.reconfigure(dep, recs[rid], target)
            if target is None and not recs:
                del state.targets[dep]
                for kept in (state.replicas, state.failed, state.previous, state.rolled_back, state.unplaced):
                    kept.pop(dep, None)
                changed = True
            if dep in state.previous and target is not None:
                version = target.code_version()
                if all(r.version == version for r in recs.values()):
                    del state.previous[dep]  # rolled out: no replica of another version is left
                    changed = True
            self._export(dep, target, recs)
        for name, app in list(state.apps.items()):
            if app.deleting and not any(d.app == name for d in state.targets):
                del state.apps[name]
                changed = True
        await self.proxies.reconcile()
        now = self.clock.monotonic()
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
        now = self.clock.monotonic()
        state = self.autoscalers.get(dep)
        if state is None:
            state = self.autoscalers[dep] = autoscaler.AutoscalerState(created_at=self.started_at)
        total = fresh_demand(self.demand, dep.key(), now)
        decision = scale_step(cfg, target.target_replicas, state, total, now)
        metrics.child(metrics.AUTOSCALER_DEMAND, dep.app, dep.name).set(total)
        metrics.child(metrics.AUTOSCALER_DESIRED, dep.app, dep.name).set(decision.desired)
        if decision.desired == target.target_replicas:
            return False
        log.info("autoscaling %s: %d -> %d replicas (%s, demand %d)", dep, target.target_replicas, decision.desired, decision.reason, total)
        metrics.child(metrics.AUTOSCALER_DECISIONS, dep.app, dep.name, decision.reason).inc()
        target.target_replicas = decision.desired
        return True

    def _export(self, dep: DeploymentID, target: ds.DeploymentTarget | None, recs: dict[str, ds.ReplicaRecord]) -> None:
        for state in ReplicaState:
            n = sum(1 for r in recs.values() if r.state == state)
            metrics.child(metrics.DEPLOYMENT_REPLICAS, dep.app, dep.name, state.value).set(n)
        metrics.child(metrics.DEPLOYMENT_TARGET, dep.app, dep.name).set(target.target_replicas if target else 0)

    # -- called by replicas and callers ------------------------------------------------

    async def record_models(self, key: str, replica_id: str, model_ids: list[str], seq: int = 0) -> None:
        """A replica's multiplexed models changed: callers prefer it for those ids. ``seq``
        orders one replica's reports (an older one arriving late is dropped)."""
        rec = self.state.replicas.get(DeploymentID.from_key(key), {}).get(replica_id)
        if rec is None or seq < rec.models_seq:
            return
        rec.models_seq = seq
        if rec.model_ids != tuple(model_ids):
            rec.model_ids = tuple(model_ids)
            self._publish()

    async def report_demand(self, caller_id: str, demand: dict[str, int]) -> None:
        """Callers' running plus queued requests per deployment (about 2 messages/s each)."""
        now = self.clock.monotonic()
        self.demand[caller_id] = (now, demand)
        for c in [c for c, (when, _) in self.demand.items() if now - when > DEMAND_KEPT_S]:
            del self.demand[c]
        state = self.state
        for key, n in demand.items():
            dep = DeploymentID.from_key(key)
            target = state.targets.get(dep)
            if n and target is not None and target.target_replicas == 0 and self._autoscale(dep, target):
                self._checkpoint()
                for _ in range(ds.plan(target, state.replicas.setdefault(dep, {}), dep in state.failed).start):
                    if not self.lifecycle.start(dep, target):  # from zero: start now, not on the next pass
                        break

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
        return status_doc.snapshot(self.state, self.clock.monotonic())

    # -- API (called by drivers and the CLI) -------------------------------------------

    async def deploy_app(self, name: str, route_prefix: str | None, ingress: str, deployments: list[dict[str, Any]]) -> None:
        state = self.state
        for other in state.apps.values():
            if other.name != name and not other.deleting and route_prefix is not None and other.route_prefix == route_prefix:
                raise ValueError(
                    f"route_prefix {route_prefix!r} is already used by application {other.name!r}; "
                    "choose another prefix or delete that application"
                )
        app = state.apps.get(name)
        if app is None or app.deleting:
            app = state.apps[name] = App(name, route_prefix, ingress, self.clock.time())
        app.route_prefix, app.ingress, app.deployed_at = route_prefix, ingress, self.clock.time()
        wanted = set()
        for d in deployments:
            dep = DeploymentID(name, d["name"])
            wanted.add(dep)
            new = ds.DeploymentTarget(dep, d["def_bytes"], d["init_bytes"], d["options"], d["target_replicas"],
                                      d.get("code_hash", ""))
            old = state.targets.get(dep)
            ac = new.opts.autoscaling_config
            if ac is not None and old is not None and old.opts.autoscaling_config is not None:
                # A redeploy keeps the size the autoscaler found, within the new bounds.
                new.target_replicas = min(ac.max_replicas, max(ac.min_replicas, old.target_replicas))
            if old is None or old.code_version() != new.code_version():
                state.failed.pop(dep, None)
                state.start_failures.pop(dep, None)
                if old is not None and dep not in state.previous and state.replicas.get(dep):
                    state.previous[dep] = old  # a rollout on top of a rollout goes back to the last whole one
            state.rolled_back.pop(dep, None)
            state.targets[dep] = new
            state.replicas.setdefault(dep, {})
        for dep in list(state.targets):
            if dep.app == name and dep not in wanted:
                state.targets[dep] = None
        self._publish()
        await self.checkpoints.durable()

    async def delete_app(self, name: str) -> None:
        app = self.state.apps.get(name)
        if app is None:
            return
        app.deleting = True
        for dep in list(self.state.targets):
            if dep.app == name:
                self.state.targets[dep] = None
        self._publish()
        await self.checkpoints.durable()

    async def get_http_options(self) -> dict[str, Any]:
        return self.state.http_options

    async def app_names(self) -> dict[str, str]:
        return {n: a.ingress for n, a in self.state.apps.items() if not a.deleting}

    async def status(self) -> dict[str, Any]:
        return {"applications": status_doc.applications(self.state), "proxies": await self.proxies.status(self.version),
                "controller": {"metrics_port": self.metrics_port}}

    async def metric_targets(self) -> list[str]:
        """host:port of every serve_core process's /metrics, for Prometheus discovery."""
        ip = self.cluster.node_ip()
        out = [f"{ip}:{self.metrics_port}"]
        out += self.proxies.metric_targets()
        for recs in self.state.replicas.values():
            out += [f"{r.addr.host}:{r.metrics_port}" for r in recs.values() if r.addr and r.metrics_port]
        return out

    async def graceful_shutdown(self, timeout_s: float = 30.0) -> None:
        for name in list(self.state.apps):
            await self.delete_app(name)
        deadline = self.clock.monotonic() + timeout_s
        while self.state.targets and self.clock.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._stopping = True
        names = self.proxies.kill_all()
        await asyncio.sleep(0)
        for recs in self.state.replicas.values():
            for r in recs.values():
                self.cluster.kill(r.handle)
        names += [r.actor_name for recs in self.state.replicas.values() for r in recs.values()]
        # Return only when they are gone, so their ports are free for whoever comes next.
        loop = asyncio.get_event_loop()
        deadline = self.clock.monotonic() + SHUTDOWN_GONE_S
        while names and self.clock.monotonic() < deadline:
            names = [n for n in names if await loop.run_in_executor(None, self.cluster.get_actor, n) is not None]
            if names:
                await asyncio.sleep(0.1)
        # A checkpoint left behind would make the next controller restore these options
        # (an earlier run's port) instead of its own.
        await self.checkpoints.delete()

    async def pid(self) -> int:
        return os.getpid()
