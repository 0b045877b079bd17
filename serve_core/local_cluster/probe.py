"""What `serve-core cluster status` asks Ray: ``python -m serve_core.local_cluster.probe
--address HOST:PORT`` prints one JSON document (Ray's nodes, serve_core's status).

It runs as its own process, on a node of the cluster (inside the head's namespace in
netns mode, where a driver must run), with the cluster's token in its environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any


def probe(address: str) -> dict[str, Any]:
    import ray

    from serve_core import api, cluster

    cluster.connect(address)
    nodes = [
        {
            "node_id": n["NodeID"], "alive": bool(n.get("Alive")), "address": n.get("NodeManagerAddress", ""),
            "labels": dict(n.get("Labels") or {}), "metrics_port": n.get("MetricsExportPort", 0),
            "resources": dict(n.get("Resources") or {}),
            "is_head": "node:__internal_head__" in (n.get("Resources") or {}),
        }
        for n in ray.nodes()
    ]
    out: dict[str, Any] = {"nodes": nodes, "serve": None, "serve_error": ""}
    try:
        out["serve"] = dataclasses.asdict(api.status())
    except Exception as e:
        out["serve_error"] = f"{type(e).__name__}: {e}"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serve_core.local_cluster.probe")
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
