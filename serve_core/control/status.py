"""What the controller tells callers and people: the snapshot callers route by (``snapshot``)
and the status document behind ``serve.status()`` and `serve-core status` (``applications``).
Pure functions of the controller's state."""

from __future__ import annotations

from typing import Any

from serve_core.config import data_path_settings
from serve_core.control import deployment_state as ds
from serve_core.control.state import ControlState
from serve_core.ids import ApplicationStatus, DeploymentID, DeploymentStatus, ReplicaState

DEAD_KEPT_S = 60.0  # how long a dead replica stays in snapshots (a caller may be slow to poll)


def snapshot(state: ControlState, now: float) -> dict[str, Any]:
    """Replica sets, routes and data-path settings, as callers get them from ``listen``.
    Forgets replicas dead for longer than DEAD_KEPT_S."""
    deployments = {}
    for dep, target in state.targets.items():
        if target is None:
            continue
        opts = target.opts
        recs = [r for r in state.replicas.get(dep, {}).values() if r.state == ReplicaState.RUNNING and r.addr]
        dead = state.dead.get(dep, {})
        for rid, at in list(dead.items()):
            if now - at > DEAD_KEPT_S:
                del dead[rid]
        deployments[dep.key()] = {
            "replicas": [r.addr for r in recs], "dead": sorted(dead), "max_ongoing": opts.max_ongoing_requests,
            "max_queued": opts.max_queued_requests, "idempotent": opts.idempotent,
            "backpressure": opts.backpressure_config.model_dump() if opts.backpressure_config else None,
            "models": {r.replica_id: list(r.model_ids) for r in recs if r.model_ids},
        }
    routes = {
        a.route_prefix: (a.name, DeploymentID(a.name, a.ingress).key())
        for a in state.apps.values() if a.route_prefix is not None and not a.deleting
    }
    return {"deployments": deployments, "routes": routes, "data_path": data_path_settings(state.http_options)}


def applications(state: ControlState) -> dict[str, Any]:
    """Per application: its status, message, route and deployments with their replicas."""
    apps = {}
    for name, app in state.apps.items():
        deps = {}
        for dep, target in state.targets.items():
            if dep.app != name:
                continue
            recs = state.replicas.get(dep, {})
            st = ds.status(target, recs, dep in state.failed or dep in state.rolled_back)
            counts: dict[str, int] = {}
            for r in recs.values():
                counts[r.state.value] = counts.get(r.state.value, 0) + 1
            deps[dep.name] = {
                "status": st.value, "message": state.failed.get(dep) or state.rolled_back.get(dep) or state.unplaced.get(dep, ""),
                "replica_states": counts,
                "target_replicas": target.target_replicas if target else 0,
                "replicas": [
                    {"replica_id": r.replica_id, "state": r.state.value, "version": r.version, "pid": r.pid,
                     "node_id": r.node_id,
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
    return apps
