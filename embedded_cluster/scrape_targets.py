"""The target refresher: keeps Prometheus's file_sd files current.

``python -m embedded_cluster.scrape_targets --state-dir DIR`` is a supervisor without
Ray that runs a Ray driver child (``--driver``) and restarts it whenever it exits or
stops making progress (a driver dies with the raylet it is attached to, for example
when the head node is killed). Every ``--interval`` seconds the driver rewrites, only
when they change:

- ``targets/ray.json``: the metrics export port of every alive Ray node;
- ``targets/serve_core.json``: the serve_core controller's ``metric_targets()``, or an
  empty list while serve_core is not started;
- ``view.json``: what `status` and the kill faults read from Ray (``probe.write_recent``).

While Ray does not answer, the last files stay as they were.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from embedded_cluster import probe, prometheus
from embedded_cluster.layout import ClusterPlan

log = logging.getLogger("embedded_cluster.scrape_targets")
HEARTBEAT = ".heartbeat"
STALE_S = 30.0  # a driver that has not completed a round in this long is restarted
RESTART_DELAY_S = (2.0, 30.0)  # first and longest wait before restarting a driver that exited


def _load_plan(state_dir: str) -> ClusterPlan:
    with open(os.path.join(state_dir, "state.json")) as f:
        return ClusterPlan.from_dict(json.load(f)["plan"])


def refresh_once(state_dir: str, plan: ClusterPlan) -> None:
    from serve_core import ray_seam

    raw_nodes = probe.gcs_nodes()
    nodes = [
        {"address": n["NodeManagerAddress"], "metrics_port": n.get("MetricsExportPort", 0), "node_id": n["NodeID"]}
        for n in raw_nodes if n.get("Alive")
    ]
    if nodes:
        prometheus.write_targets(prometheus.targets_file(state_dir, prometheus.RAY_JOB),
                                 prometheus.ray_target_groups(plan, nodes))
    controller = ray_seam.get_controller()
    groups: list[dict[str, Any]] = []
    status = None
    if controller is not None:
        targets = controller.metric_targets(timeout=10)
        status = controller.status(timeout=10)
        groups = prometheus.serve_core_target_groups(list(targets), status)
    prometheus.write_targets(prometheus.targets_file(state_dir, prometheus.SERVE_CORE_JOB), groups)
    probe.write_recent(state_dir, probe.view(raw_nodes, status))


def run_driver(state_dir: str, interval_s: float) -> int:
    from serve_core import ray_seam

    plan = _load_plan(state_dir)
    heartbeat = os.path.join(prometheus.targets_dir(state_dir), HEARTBEAT)
    ray_seam.connect(plan.gcs_address)
    while True:
        start = time.monotonic()
        try:
            refresh_once(state_dir, plan)
            with open(heartbeat, "w") as f:
                f.write(f"{time.time()}\n")
        except Exception as e:  # keep the last files; try again next round
            log.warning("refresh failed: %s: %s", type(e).__name__, e)
        time.sleep(max(0.1, interval_s - (time.monotonic() - start)))


def run_supervisor(state_dir: str, interval_s: float) -> int:
    heartbeat = os.path.join(prometheus.targets_dir(state_dir), HEARTBEAT)
    argv = [sys.executable, "-m", "embedded_cluster.scrape_targets", "--state-dir", state_dir,
            "--interval", str(interval_s), "--driver"]
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    delay = RESTART_DELAY_S[0] / 2  # doubled before its first use
    while not stopping:
        started = time.time()
        child = subprocess.Popen(argv)
        while not stopping and child.poll() is None:
            time.sleep(0.5)
            try:
                last = max(os.path.getmtime(heartbeat), started)
            except OSError:
                last = started
            if time.time() - last > STALE_S:
                log.warning("driver made no progress for %.0fs; restarting it", STALE_S)
                child.kill()
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        child.wait()
        if not stopping:
            # Back off while Ray stays away (each start costs a Ray import and connect).
            delay = RESTART_DELAY_S[0] if time.time() - started > STALE_S else min(delay * 2, RESTART_DELAY_S[1])
            log.warning("driver exited with %s; restarting in %.0fs", child.returncode, delay)
            deadline = time.monotonic() + delay
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embedded_cluster.scrape_targets")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--driver", action="store_true", help="run the Ray driver loop itself (the supervisor's child)")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s targets: %(message)s")
    if ns.driver:
        return run_driver(ns.state_dir, ns.interval)
    return run_supervisor(ns.state_dir, ns.interval)


if __name__ == "__main__":
    sys.exit(main())
