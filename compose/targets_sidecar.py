"""The compose testbed's Prometheus target refresher: the embedded cluster's
(``embedded_cluster.scrape_targets``) pointed at the compose head. compose/node.sh starts it in
the head container: its Ray driver must run on a Ray node (it talks to the local raylet), and
with the head it goes and comes back.

It writes the refresher's state file (a cluster plan holding the head, whose address and
metrics port are fixed in compose; workers come and go and are found through Ray) and runs
the refresher's supervisor, which keeps ``DIR/prometheus/targets/ray.json`` (every alive Ray
node's metrics port) and ``serve_core.json`` (the controller's ``metric_targets()``) current,
restarting its Ray driver whenever the head goes away. Prometheus reads the same files.

    python compose/targets_sidecar.py --state-dir /sd --head-ip 10.78.0.10
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from embedded_cluster import prometheus, scrape_targets
from embedded_cluster.layout import NETNS, ClusterPlan, NodePlan, NodePorts, PortSettings
from embedded_cluster.state import write_atomic


def compose_plan(head_ip: str, gcs_port: int, metrics_port: int, name: str = "compose") -> ClusterPlan:
    ports = NodePorts(0, 0, metrics_port, 0, 0, 0, 0, 0, 0)
    head = NodePlan("head", "head", head_ip, None, None, ports, 8000, 0)
    return ClusterPlan(name, NETNS, head_ip, None, PortSettings(gcs=gcs_port), (head,))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python compose/targets_sidecar.py")
    p.add_argument("--state-dir", default=os.environ.get("SERVE_CORE_TARGETS_STATE", "/sd"))
    p.add_argument("--head-ip", default=os.environ.get("SERVE_CORE_HEAD_IP", ""))
    p.add_argument("--gcs-port", type=int, default=int(os.environ.get("SERVE_CORE_GCS_PORT", "6379")))
    p.add_argument("--metrics-port", type=int, default=8080)
    p.add_argument("--interval", type=float, default=2.0)
    ns = p.parse_args(argv)
    if not ns.head_ip:
        p.error("give --head-ip (or SERVE_CORE_HEAD_IP)")
    plan = compose_plan(ns.head_ip, ns.gcs_port, ns.metrics_port)
    os.makedirs(prometheus.targets_dir(ns.state_dir), exist_ok=True)
    write_atomic(os.path.join(ns.state_dir, "state.json"), json.dumps({"plan": plan.to_dict()}))
    for job in (prometheus.RAY_JOB, prometheus.SERVE_CORE_JOB, prometheus.LOADGEN_JOB):
        path = prometheus.targets_file(ns.state_dir, job)
        if not os.path.exists(path):
            prometheus.write_targets(path, prometheus.ray_target_groups(plan) if job == prometheus.RAY_JOB else [])
    return scrape_targets.run_supervisor(ns.state_dir, ns.interval)


if __name__ == "__main__":
    sys.exit(main())
