"""Choosing the process a fault hits, from the probe's view of the cluster
(``embedded_cluster.probe``): which replicas match a fault's selectors and the order a seeded
kill tries them in, the proxy on a node, the controller. The embedded cluster's faults and the
compose target both choose here, so one seed hits the same replica wherever the experiment
runs. ``names`` maps Ray node ids to node names (each target knows its own nodes). Pure."""

from __future__ import annotations

import random
from typing import Any


def serving(view: dict[str, Any], backend: str) -> dict[str, Any]:
    """The status of ``backend`` (serve_core or ray_serve) in a probe's view."""
    return (view.get("serve") if backend == "serve_core" else view.get("ray_serve")) or {}


def replica_candidates(view: dict[str, Any], names: dict[str, str], backend: str = "serve_core",
                       app: str | None = None, deployment: str | None = None,
                       node: str | None = None) -> list[dict[str, Any]]:
    """Running replicas (with a pid) matching the selectors, in a stable order. ``names``: Ray
    node id -> node name. Pure."""
    out = []
    for app_name, a in sorted((serving(view, backend).get("applications") or {}).items()):
        for dep_name, d in sorted((a.get("deployments") or {}).items()):
            for r in d.get("replicas") or []:
                where = names.get(str(r.get("node_id", "")), "")
                if (r.get("state") == "RUNNING" and r.get("pid") and app in (None, app_name)
                        and deployment in (None, dep_name) and node in (None, where)):
                    out.append({"app": app_name, "deployment": dep_name, "replica_id": r.get("replica_id"),
                                "pid": int(r["pid"]), "node": where})
    return out


def replica_order(candidates: list[dict[str, Any]], seed: int | None) -> list[dict[str, Any]]:
    """The order in which a seeded kill-replica tries replicas: the first that is still alive
    is hit (the view may be stale). Pure."""
    order = list(candidates)
    random.Random(seed).shuffle(order)
    return order


def proxy_on(view: dict[str, Any], names: dict[str, str], node: str, backend: str = "serve_core") -> dict[str, Any] | None:
    """The proxy on ``node`` (node, pid, address), or None."""
    for node_id, p in (serving(view, backend).get("proxies") or {}).items():
        if names.get(node_id) == node and p.get("pid"):
            return {"node": node, "pid": int(p["pid"]), "address": f"{p.get('host', '')}:{p.get('port', '')}"}
    return None


def controller_pid(view: dict[str, Any], backend: str = "serve_core") -> int:
    """The controller's pid; 0 when there is none."""
    return int((view if backend == "serve_core" else serving(view, backend)).get("controller_pid") or 0)
