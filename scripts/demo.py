"""`make demo`: the two halves of the project in a few minutes.

1. Serving: start Ray locally, deploy the example applications with serve_core, send
   requests over HTTP and through handles, and print the answers.
2. The testbed's main job: bring up a multi-node cluster on this machine (a network
   namespace per node when root), run the CI chaos experiment (a replica killed, then the
   head node killed and restarted, under open-loop load), print its uptime report and take
   the cluster down again.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import ray
import requests

sys.path.insert(0, ".")

import serve_core as serve  # noqa: E402

PORT = 8000


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def serving() -> int:
    logging.basicConfig(level=logging.WARNING)
    say("starting a local Ray cluster")
    ray.init(address="local", num_cpus=8, namespace="serve_core", log_to_driver=False, logging_level=logging.WARNING)
    try:
        serve.start(http_options={"port": PORT})
        from examples.content_understanding.app import app as pipeline
        from examples.function_app.app import app as hello
        from examples.sklearn_pipeline.app import app as sklearn_app

        t = time.monotonic()
        say("deploying the content understanding pipeline (9 deployments, torch models)")
        handle = serve.run(pipeline, name="content", route_prefix="/content")
        serve.run(sklearn_app, name="sklearn", route_prefix="/sklearn")
        serve.run(hello, name="hello", route_prefix="/hello")
        say(f"three applications running after {time.monotonic() - t:.1f}s")

        base = f"http://127.0.0.1:{PORT}"
        for seed in (0, 2, 3):
            r = requests.post(f"{base}/content", json={"seed": seed}, timeout=30)
            say(f"POST /content {{'seed': {seed}}} -> {r.status_code} {r.text}")
        say(f"handle.analyze({{'seed': 5}}) -> {json.dumps(handle.analyze.remote({'seed': 5}).result())}")
        r = requests.post(f"{base}/sklearn", json={"features": [[0.1, -1.2, 0.7, 2.0], [1.5, 0.3, -0.4, 0.0]]}, timeout=30)
        say(f"POST /sklearn -> {r.status_code} {r.text}")
        r = requests.get(f"{base}/hello", params={"name": "Ada"}, timeout=30)
        say(f"GET /hello?name=Ada -> {r.status_code} {r.text}")
        r = requests.post(f"{base}/content", json={"nonsense": 1}, timeout=30)
        say(f"POST /content with a bad body -> {r.status_code} {r.text}")

        st = serve.status()
        for name, a in st.applications.items():
            reps = {d: v.replica_states for d, v in a.deployments.items()}
            say(f"status {name}: {a.status} {reps}")
        return 0
    finally:
        say("shutting down")
        serve.shutdown()
        ray.shutdown()


def chaos_run() -> int:
    """The CI experiment on a fresh embedded cluster; the uptime report is printed."""
    cluster = ["serve-core", "cluster"]
    say("bringing up a cluster: Redis, a Ray head, 2 workers, Prometheus (serve-core cluster up --name demo)")
    if subprocess.run(cluster + ["up", "--name", "demo", "--workers", "2"]).returncode != 0:
        return 1
    try:
        say("running chaos/experiments/demo.yaml: the content pipeline, a replica, the controller and the GCS killed (about 3 minutes)")
        out = "reports/chaos/demo"
        rc = subprocess.run([sys.executable, "-m", "chaos", "run", "chaos/experiments/demo.yaml",
                             "--target", "embedded:demo", "--out", out, "--quiet"]).returncode
        runs = sorted(os.listdir(out)) if os.path.isdir(out) else []
        if runs:
            with open(os.path.join(out, runs[-1], "report.md")) as f:
                print(f.read(), flush=True)
        return rc
    finally:
        say("taking the cluster down")
        subprocess.run(cluster + ["down", "--name", "demo"])


def main() -> int:
    return serving() or chaos_run()


if __name__ == "__main__":
    sys.exit(main())
