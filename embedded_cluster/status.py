"""`serve-core cluster status`: nodes, proxies, applications and replicas per node, with
Redis and Prometheus; healthy only when every process the cluster started is alive and
answers. ``status_doc`` is the pure part (a unit test feeds it views)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from embedded_cluster import probe, processes, prometheus, redis
from embedded_cluster.state import ClusterState, require_state


def cmd_status(ns: argparse.Namespace) -> int:
    state = require_state(ns)
    ray_view = probe.ask(state, timeout_s=45.0)
    doc = status_doc(state, ray_view, live_checks(state))
    print(json.dumps(doc, indent=2) if ns.json else yaml.safe_dump(doc, sort_keys=False), end="")
    return 0 if doc["healthy"] else 1


def live_checks(state: ClusterState) -> dict[str, Any]:
    """What status checks itself: processes by pid, Redis PING, Prometheus readiness."""
    plan = state.plan
    return {
        "processes": {p.name: processes.alive(p) for p in state.processes},
        "redis": redis.ping(plan.host_address, plan.ports.redis, state.redis_password),
        "prometheus": prometheus.ready(plan.prometheus_url),
    }


def status_doc(state: ClusterState, ray_view: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The status document from the state file, Ray's view (``probe.ask``) and
    ``live_checks``. Pure."""
    plan = state.plan
    ray_nodes_by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for n in ray_view.get("nodes", []):
        key = (n["address"], n["metrics_port"])
        if n["alive"] or key not in ray_nodes_by_key:
            ray_nodes_by_key[key] = n
    serve = ray_view.get("serve") or {}
    name_by_id = {}
    nodes = []
    for node in plan.nodes:
        rn = ray_nodes_by_key.get((node.address, node.ports.metrics_export), {})
        if rn.get("node_id"):
            name_by_id[rn["node_id"]] = node.name
        record = state.process(node.name)
        nodes.append({
            "name": node.name, "role": node.role, "namespace": node.namespace, "address": node.address,
            "ray_node_id": rn.get("node_id", state.node_ids.get(node.name, "")),
            "alive": bool(rn.get("alive")) if rn else False,
            "process": {"pid": record.pid, "alive": bool(live["processes"].get(node.name))} if record else None,
            "cpus": rn.get("resources", {}).get("CPU", node.num_cpus) if rn else node.num_cpus,
            "metrics": node.metrics_target,
            "replicas": {},
        })
    by_name = {n["name"]: n for n in nodes}
    proxies, applications = _serving(serve, name_by_id, by_name)
    redis_answer, prom_ready = live["redis"], bool(live["prometheus"])
    procs = [{"name": p.name, "role": p.role, "pid": p.pid, "alive": bool(live["processes"].get(p.name))}
             for p in state.processes]
    healthy = (all(p["alive"] for p in procs) and all(n["alive"] for n in nodes) and redis_answer == "PONG"
               and prom_ready and "error" not in ray_view)
    doc: dict[str, Any] = {
        "cluster": plan.name, "mode": plan.mode, "healthy": healthy, "ready": state.ready,
        "head_address": plan.gcs_address, "state_file": state.path,
        "nodes": nodes,
        "proxies": proxies,
        "applications": applications,
        "redis": {"address": plan.redis_address, "ping": redis_answer},
        "prometheus": {"url": plan.prometheus_url, "ready": prom_ready,
                       "load_targets_file": prometheus.targets_file(state.state_dir, prometheus.LOADGEN_JOB)},
        "processes": procs,
    }
    if ray_view.get("ray_serve"):  # Ray Serve runs on the cluster too (the testbed compares them)
        rs_proxies, rs_apps = _serving(ray_view["ray_serve"], name_by_id, {})
        doc["ray_serve"] = {"proxies": rs_proxies, "applications": rs_apps}
    if "error" in ray_view:
        doc["ray_error"] = ray_view["error"]
    if ray_view.get("serve_error"):
        doc["serve_error"] = ray_view["serve_error"]
    return doc


def _serving(serve: dict[str, Any], name_by_id: dict[str, str],
             by_name: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Proxies and applications of a serving status, placed on node names; counts each
    node's replicas into ``by_name``. Pure."""
    proxies = []
    for node_id, p in (serve.get("proxies") or {}).items():
        proxies.append({
            "node": name_by_id.get(node_id, node_id[:12]), "state": p.get("state", ""),
            "address": f"{p.get('host', '')}:{p.get('port', '')}", **({"message": p["message"]} if p.get("message") else {}),
        })
    applications = {}
    for app_name, app in (serve.get("applications") or {}).items():
        deps = {}
        for dep_name, dep in app.get("deployments", {}).items():
            per_node: dict[str, int] = {}
            listed = []
            for r in dep.get("replicas", []):
                where = name_by_id.get(r.get("node_id", ""), (r.get("node_id") or "(not placed)")[:12])
                per_node[where] = per_node.get(where, 0) + 1
                listed.append({"id": r.get("replica_id", ""), "state": r.get("state", ""), "node": where,
                               "version": r.get("version", ""), "pid": r.get("pid", 0)})
                if where in by_name:
                    dep_key = f"{app_name}/{dep_name}"
                    by_name[where]["replicas"][dep_key] = by_name[where]["replicas"].get(dep_key, 0) + 1
            deps[dep_name] = {"status": dep.get("status"), "replicas": dep.get("replica_states", {}),
                              "target": dep.get("target_replicas"), "replicas_per_node": per_node,
                              "replica_list": listed}
        applications[app_name] = {"status": app.get("status"), "route_prefix": app.get("route_prefix"), "deployments": deps}
    return proxies, applications
