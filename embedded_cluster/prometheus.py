"""A real Prometheus server that scrapes every Ray node and every serve_core process.

Both jobs use file-based service discovery: ``targets/ray.json`` (each alive node's
metrics export port) and ``targets/serve_core.json`` (controller, proxies, replicas),
which the target refresher (``targets.py``) rewrites atomically as nodes and replicas
come and go. Scrape interval 1 s. The config and target-group builders here are pure.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml

from embedded_cluster import processes
from embedded_cluster.errors import LocalClusterError
from embedded_cluster.layout import ClusterPlan
from embedded_cluster.state import ClusterState, ProcessRecord, write_atomic

RAY_JOB = "ray"
SERVE_CORE_JOB = "serve_core"
LOADGEN_JOB = "loadgen"  # load generators (the testbed) list their metrics endpoints in targets/loadgen.json


def targets_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "prometheus", "targets")


def targets_file(state_dir: str, job: str) -> str:
    return os.path.join(targets_dir(state_dir), f"{job}.json")


def config(state_dir: str, cluster: str, interval_s: float = 1.0) -> dict[str, Any]:
    """The prometheus.yml document."""
    interval = f"{interval_s:g}s"

    def job(name: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "file_sd_configs": [{"files": [targets_file(state_dir, name)], "refresh_interval": interval}],
        }

    return {
        "global": {
            "scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval,
            "external_labels": {"cluster": cluster},
        },
        "scrape_configs": [job(RAY_JOB), job(SERVE_CORE_JOB), job(LOADGEN_JOB)],
    }


def ray_target_groups(plan: ClusterPlan, alive_nodes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One group per Ray node. Without ``alive_nodes`` (before Ray answers): the plan's
    nodes. With it (``{"address", "metrics_port", "node_id"}`` per alive node): those."""
    if alive_nodes is None:
        alive_nodes = [{"address": n.address, "metrics_port": n.ports.metrics_export, "node_id": ""} for n in plan.nodes]
    names = {(n.address, n.ports.metrics_export): n for n in plan.nodes}
    groups = []
    for n in sorted(alive_nodes, key=lambda n: (n["address"], n["metrics_port"])):
        if not n.get("metrics_port"):
            continue
        known = names.get((n["address"], n["metrics_port"]))
        labels = {"node": known.name if known else n["address"], "role": known.role if known else "worker"}
        if n.get("node_id"):
            labels["ray_node_id"] = n["node_id"]
        groups.append({"targets": [f"{n['address']}:{n['metrics_port']}"], "labels": labels})
    return groups


def serve_core_target_groups(metric_targets: list[str], status: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Groups for the controller's ``metric_targets()``, labelled by component.

    Every target is a metrics port of its own (never a proxy's HTTP port)."""
    proxies, replicas = set(), set()
    for p in (status or {}).get("proxies", {}).values():
        if p.get("host") and p.get("metrics_port"):
            proxies.add(f"{p['host']}:{p['metrics_port']}")
    for app in (status or {}).get("applications", {}).values():
        for dep in app.get("deployments", {}).values():
            for r in dep.get("replicas", []):
                if r.get("host") and r.get("metrics_port"):
                    replicas.add(f"{r['host']}:{r['metrics_port']}")
    by_kind: dict[str, list[str]] = {"controller": [], "proxy": [], "replica": []}
    for t in dict.fromkeys(metric_targets):
        kind = "proxy" if t in proxies else "replica" if t in replicas else "controller"
        by_kind[kind].append(t)
    groups = []
    for kind, targets in by_kind.items():
        if targets:
            labels = {"component": kind}
            groups.append({"targets": sorted(targets), "labels": labels})
    return groups


def write_targets(path: str, groups: list[dict[str, Any]]) -> bool:
    """Rewrite a file_sd file atomically if its content changed; True if it did."""
    text = json.dumps(groups, indent=1, sort_keys=True) + "\n"
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, text)
    return True


def start(state: ClusterState, env: dict[str, str]) -> ProcessRecord:
    binary = processes.require_binary("prometheus", "prometheus")
    plan = state.plan
    base = state.sub("prometheus")
    os.makedirs(os.path.join(base, "data"), exist_ok=True)
    conf = os.path.join(base, "prometheus.yml")
    write_atomic(conf, yaml.safe_dump(config(state.state_dir, plan.name), sort_keys=False))
    write_targets(targets_file(state.state_dir, RAY_JOB), ray_target_groups(plan))
    write_targets(targets_file(state.state_dir, SERVE_CORE_JOB), [])
    write_targets(targets_file(state.state_dir, LOADGEN_JOB), [])
    argv = [
        binary, f"--config.file={conf}", f"--storage.tsdb.path={os.path.join(base, 'data')}",
        f"--web.listen-address={plan.host_address}:{plan.ports.prometheus}",
        "--storage.tsdb.retention.time=1d", "--log.level=warn",
    ]
    record = processes.spawn("prometheus", "prometheus", argv, os.path.join(state.logs_dir, "prometheus.log"), env,
                             cwd=base)
    state.add(record)  # recorded before waiting, so a failed start is still stopped by `down`
    state.save()
    ok = processes.wait_until(lambda: not processes.alive(record) or ready(plan.prometheus_url), 30)
    if not ok or not processes.alive(record):
        raise LocalClusterError(
            f"prometheus did not become ready at {plan.prometheus_url}", processes.tail(record.log, 8),
            f"free port {plan.ports.prometheus} or pick another with --prometheus-port",
        )
    return record


def ready(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=timeout_s) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def query(url: str, promql: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The result vector of an instant query (empty on any failure)."""
    q = urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=timeout_s) as r:
            doc = json.load(r)
    except (urllib.error.URLError, OSError, ValueError):
        return []
    return list(doc.get("data", {}).get("result", []))
