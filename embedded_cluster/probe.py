"""What `serve-core cluster status` asks Ray: ``python -m embedded_cluster.probe
--address HOST:PORT`` prints one JSON document (Ray's nodes, serve_core's status).

It runs as its own process, on a node of the cluster (inside the head's namespace in
netns mode, where a driver must run), with the cluster's token in its environment. Starting
a driver takes seconds, and many more on a busy machine, so the target refresher (a driver
that stays connected) also writes the same view every round (``write_recent``); kill faults
act on that one when it is fresh (``recent``), so they land when they are scheduled.

The embedded cluster's one seam to Ray: no other module of the package imports ``ray``
(serve_core is reached through its own seam, ``serve_core.ray_seam``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

RAY_SERVE_PORT = 8000  # Ray Serve's default; the chaos deploy driver keeps it
RAY_SERVE_CONTROLLER, RAY_SERVE_NAMESPACE = "SERVE_CONTROLLER_ACTOR", "serve"  # where Ray Serve names its controller
RECENT_FILE = "view.json"  # in the state directory, written by the target refresher
RECENT_MAX_AGE_S = 5.0  # the refresher writes every 2 s

if TYPE_CHECKING:
    from embedded_cluster.state import ClusterState


def probe(address: str) -> dict[str, Any]:
    from serve_core import ray_seam

    ray_seam.connect(address)
    return view()


def gcs_nodes() -> list[dict[str, Any]]:
    """``ray.nodes()``: every node the GCS knows, alive or not (from a connected driver)."""
    import ray

    return list(ray.nodes())


def view(raw_nodes: list[dict[str, Any]] | None = None, raw_status: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ray's nodes and both backends' status, from a driver already connected. A caller that
    has just fetched ``ray.nodes()`` or the controller's status passes them in."""

    from serve_core import api, ray_seam

    nodes = [
        {
            "node_id": n["NodeID"], "alive": bool(n.get("Alive")), "address": n.get("NodeManagerAddress", ""),
            "labels": dict(n.get("Labels") or {}), "metrics_port": n.get("MetricsExportPort", 0),
            "resources": dict(n.get("Resources") or {}),
            "is_head": "node:__internal_head__" in (n.get("Resources") or {}),
        }
        for n in (gcs_nodes() if raw_nodes is None else raw_nodes)
    ]
    out: dict[str, Any] = {"nodes": nodes, "serve": None, "serve_error": "", "controller_pid": 0}
    try:
        controller = ray_seam.get_controller()
        if controller is not None:
            raw = controller.status(timeout=10) if raw_status is None else raw_status
            out["serve"] = dataclasses.asdict(api.status_from_raw(raw))
            out["controller_pid"] = controller.pid(timeout=10)
        else:
            out["serve"] = dataclasses.asdict(api.ServeStatus())
    except Exception as e:
        out["serve_error"] = f"{type(e).__name__}: {e}"
    out["ray_serve"] = ray_serve_view() if _ray_serve_runs() else None
    return out


def _ray_serve_runs() -> bool:
    """Whether Ray Serve's controller is alive: one GCS lookup, not the whole actor table."""
    import ray

    try:
        ray.get_actor(RAY_SERVE_CONTROLLER, namespace=RAY_SERVE_NAMESPACE)
    except ValueError:
        return False
    return True


def ray_serve_view() -> dict[str, Any] | None:
    """Ray Serve's controller, proxies and replicas as serve_core's status shapes them (from
    the GCS actor table), so faults and `status` treat both backends alike; None without it."""
    import ray

    view: dict[str, Any] = {"controller_pid": 0, "proxies": {}, "applications": {}}
    found = False
    for a in ray._private.state.actors().values():
        cls, pid, node_id = a.get("ActorClassName") or "", a.get("Pid") or 0, (a.get("Address") or {}).get("NodeID", "")
        if a.get("State") != "ALIVE" or not (cls == "ServeController" or cls == "ProxyActor" or cls.startswith("ServeReplica:")):
            continue
        found = True
        if cls == "ServeController":
            view["controller_pid"] = pid
        elif cls == "ProxyActor":
            view["proxies"][node_id] = {"state": "HEALTHY", "pid": pid, "host": (a.get("Address") or {}).get("IPAddress", ""),
                                        "port": RAY_SERVE_PORT}
        else:
            _, app, dep = cls.split(":", 2)
            d = view["applications"].setdefault(app, {"status": "RUNNING", "route_prefix": None, "deployments": {}})
            replicas = d["deployments"].setdefault(dep, {"status": "HEALTHY", "replicas": [], "replica_states": {}})
            replicas["replicas"].append({"replica_id": (a.get("Name") or "").rpartition("#")[2], "state": "RUNNING",
                                         "pid": pid, "node_id": node_id})
            replicas["replica_states"]["RUNNING"] = len(replicas["replicas"])
    return view if found else None


def write_recent(state_dir: str, doc: dict[str, Any]) -> None:
    path = os.path.join(state_dir, RECENT_FILE)
    with open(f"{path}.tmp", "w") as f:
        json.dump({**doc, "at": time.time()}, f)
    os.replace(f"{path}.tmp", path)


def recent(state: ClusterState, max_age_s: float = RECENT_MAX_AGE_S) -> dict[str, Any] | None:
    """The refresher's last view if it is at most ``max_age_s`` old (and had no error)."""
    try:
        with open(state.sub(RECENT_FILE)) as f:
            doc = dict(json.load(f))
    except (OSError, ValueError):
        return None
    fresh = time.time() - float(doc.get("at", 0)) <= max_age_s
    return doc if fresh and "error" not in doc and not doc.get("serve_error") else None


def ask(state: ClusterState, timeout_s: float = 45.0) -> dict[str, Any]:
    """Ray's view (nodes, serve_core status) from a driver on the head node."""
    argv = [sys.executable, "-m", "embedded_cluster.probe", "--address", state.plan.gcs_address]
    if state.plan.head.namespace:
        argv = ["ip", "netns", "exec", state.plan.head.namespace] + argv
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=_driver_env(state),
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"Ray did not answer within {timeout_s:.0f}s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except ValueError:
                break
    return {"error": f"probe exited {p.returncode}: {(p.stderr or p.stdout).strip()[-500:]}"}


def _driver_env(state: ClusterState) -> dict[str, str]:
    from embedded_cluster import ray_nodes

    return ray_nodes.driver_env(state)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embedded_cluster.probe")
    p.add_argument("--address", required=True)
    ns = p.parse_args(argv)
    try:
        doc = probe(ns.address)
    except Exception as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 3
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
