"""The compose testbed end to end: the images built from local parts (compose/build_local_images.sh),
Redis, a Ray head (with Prometheus' target refresher), two scaled workers and Prometheus brought up with docker
compose, and chaos/experiments/compose_smoke.yaml (a replica killed, then the head container
killed and started again, under 50 requests/s) run by the compose chaos runner against
``--target compose:PROJECT``; the report's verdict and figures checked; everything torn down
(`down -v`, and dockerd stopped when this test started it). Grafana and the Locust service are
behind profiles and not started (no Grafana image here). Asserts counts, never timings; prints
how long each phase took."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request

import pytest

from tests.e2e.conftest import REPO

PROJECT = "sctest"
RATE, DURATION_S, OBJECTIVE = 50, 60, 0.999
PORTS = {"SERVE_CORE_HEAD_PROXY_PORT": "18600", "SERVE_CORE_WORKER_PROXY_PORTS": "18601-18620",
         "SERVE_CORE_PROMETHEUS_PORT": "19090"}
SERVICES = ["redis", "head", "worker", "prometheus"]
FILES = ["-f", "compose/docker-compose.yml", "-f", "compose/docker-compose.local.yml"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="dockerd needs root"),
    pytest.mark.skipif(shutil.which("dockerd") is None or shutil.which("docker") is None,
                       reason="docker is not installed (scripts/install_deps.sh installs docker.io as root)"),
]


def compose_cmd() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor docker-compose is installed")
    raise AssertionError("unreachable")


def run(argv: list[str], env: dict[str, str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"`{' '.join(argv)}` failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p


def probe(env: dict[str, str]) -> dict:
    p = run(["docker", "exec", f"{container(env, 'head')}", "python", "-m", "serve_core.local_cluster.probe",
             "--address", "10.78.0.10:6379"], env, 90, check=False)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": p.stderr[-500:]}


def container(env: dict[str, str], service: str) -> str:
    p = run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
             "--filter", f"label=com.docker.compose.service={service}"], env, 30)
    ids = p.stdout.split()
    assert ids, f"no running {service} container"
    return ids[0]


def cluster_ready(env: dict[str, str], nodes: int = 3) -> bool:
    view = probe(env)
    return sum(1 for n in view.get("nodes", []) if n.get("alive")) == nodes and bool(view.get("controller_pid"))


def wait_for(what: str, ok, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(2)
    raise AssertionError(f"{what} not within {timeout_s:.0f}s")


def prometheus_ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORTS['SERVE_CORE_PROMETHEUS_PORT']}/-/ready", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.timeout(3000)
def test_compose_cluster_runs_the_smoke_experiment(tmp_path, capsys):
    phases: dict[str, float] = {}

    def phase(name: str, t0: float) -> None:
        phases[name] = time.monotonic() - t0
        with capsys.disabled():
            print(f"\n[compose e2e] {name}: {phases[name]:.0f}s", flush=True)

    env = {**os.environ, **PORTS, "COMPOSE_PROJECT_NAME": PROJECT, "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "REDIS_PASSWORD": secrets.token_hex(24), "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(12)}
    t = time.monotonic()
    started = run(["bash", "compose/dockerd.sh", "start"], env, 120).stdout.strip()
    phase(f"dockerd ({started})", t)
    compose = [*compose_cmd(), "-p", PROJECT, *FILES]
    try:
        t = time.monotonic()
        run(["bash", "compose/build_local_images.sh"], env, 2400)
        phase("image build", t)

        t = time.monotonic()
        run([*compose, "down", "-v", "--remove-orphans"], env, 300, check=False)  # a run interrupted earlier
        run([*compose, "up", "-d", "--scale", "worker=2", *SERVICES], env, 600)
        wait_for("three alive Ray nodes and a serve_core controller", lambda: cluster_ready(env), 300)
        wait_for("Prometheus", prometheus_ready, 120)
        phase("compose up (head + 2 workers ready)", t)

        # Secure by default: only the proxies and Prometheus are published, and only on loopback.
        p = run(["docker", "ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
                 "--format", "{{.Label \"com.docker.compose.service\"}} {{.Ports}}"], env, 30)
        published = {}
        for line in p.stdout.splitlines():
            service, _, ports = line.partition(" ")
            binds = [b.strip() for b in ports.split(",") if "->" in b]
            published.setdefault(service, []).extend(binds)
            assert all(b.startswith("127.0.0.1:") for b in binds), line
        assert sorted(s for s, b in published.items() if b) == ["head", "prometheus", "worker"], published
        assert len(published["worker"]) == 2, published

        t = time.monotonic()
        out = tmp_path / "chaos"
        out.mkdir()
        p = run([*compose, "run", "--rm", "-T", "-v", f"{out}:/out", "chaos", "python", "-m", "chaos", "run",
                 "chaos/experiments/compose_smoke.yaml", "--target", f"compose:{PROJECT}", "--out", "/out"],
                env, 900, check=False)
        phase("experiment run", t)
        with capsys.disabled():
            print(p.stdout[-2500:], p.stderr[-1500:], flush=True)
        runs = [d for d in os.listdir(out) if d.startswith("compose_smoke-")]
        assert len(runs) == 1, (runs, p.stdout[-3000:], p.stderr[-3000:])
        run_dir = out / runs[0]
        journal = json.loads((run_dir / "journal.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert (run_dir / "report.md").exists() and (run_dir / "report.html").exists()
        assert p.returncode == 0, (summary.get("reasons"), p.stdout[-3000:])
        assert summary["verdict"] == "passed"
        # Open loop: every scheduled request was sent; failures within the availability SLO.
        assert summary["sent"] == RATE * DURATION_S
        assert summary["failed"] <= int(summary["sent"] * (1 - OBJECTIVE)), summary["failed_by_cause"]
        assert summary["ok"] + summary["failed"] == summary["sent"]
        # The faults happened, at the targets the journal names.
        faults = journal["faults"]
        assert [f["action"] for f in faults] == ["kill-replica", "kill-node", "restart-node"]
        assert all(f["ok"] for f in faults), faults
        replica = faults[0]["output"]["target"]
        assert replica["deployment"] == "Work" and replica["pid"] > 0 and replica["node"] in ("w1", "w2")
        assert faults[1]["output"]["target"]["node"] == "head" and faults[2]["output"]["target"]["node"] == "head"
        with open(run_dir / "load" / "records.jsonl") as f:
            assert sum(1 for _ in f) == summary["sent"]
        # Prometheus counted what the client saw.
        assert journal["crosscheck"]["availability_ok"] is True, journal["crosscheck"].get("summary")
        # The cluster is whole again: the head came back and rejoined its workers.
        wait_for("three alive Ray nodes and the controller after the run", lambda: cluster_ready(env), 120)
    finally:
        t = time.monotonic()
        down = run([*compose, "down", "-v", "--remove-orphans"], env, 600, check=False)
        phase("compose down -v", t)
        if started.startswith("started"):
            run(["bash", "compose/dockerd.sh", "stop"], env, 120, check=False)
        with capsys.disabled():
            print("[compose e2e] phases: " + ", ".join(f"{k} {v:.0f}s" for k, v in phases.items()), flush=True)
    assert down.returncode == 0, down.stderr[-2000:]
