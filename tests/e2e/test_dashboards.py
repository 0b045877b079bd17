"""Every panel of every Grafana dashboard (dashboards/) against a real Prometheus scraping a real
cluster under load: a head and two workers (`serve-core cluster up`), an autoscaling app,
open-loop load from the load generator (scraped by the cluster's Prometheus), one replica
killed. Each target, with Grafana's variables substituted, must parse and return a series with
a value of the metric its panel is about; the fault annotations must mark the kill and the
scale-up. Grafana itself has no package here, so this is how the dashboards are tested.
Asserts presence, never timings."""

import json
import subprocess
import sys
import time

import pytest
import requests

from chaos.targets.base import proxy_urls_from_status
from dashboards import check, definitions
from tests.e2e.conftest import REPO, cli_env, embedded_cluster, free_port, needs_netns, serve_core

NAME = "dash"
RATE, DURATION_S = 50, 45
KILL_AT_S = 10  # into the load
CHECK_FROM_S = 25  # a full $__rate_interval (30 s) of load by then, most of it after the kill
pytestmark = needs_netns


def cluster(command, *args, timeout=240, check_rc=True):
    """`serve-core cluster COMMAND --name dash ARGS`; COMMAND may be two words ("fault kill-replica")."""
    return serve_core("cluster", *command.split(), "--name", NAME, *args, timeout=timeout, check=check_rc)


@pytest.fixture(scope="module")
def dash_cluster():
    with embedded_cluster(NAME) as name:
        yield name


def status():
    p = cluster("status", "--json", check_rc=False)
    return json.loads(p.stdout)


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (requests.RequestException, OSError, ValueError) as e:
            last = e
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout_s}s (last: {last!r})")


def test_every_panel_returns_data_from_a_cluster_under_load(dash_cluster, tmp_path):
    p = cluster("exec", "--", sys.executable, "-m", "serve_core.cli", "run", "tests.e2e.dashboard_app:app",
                "--non-blocking", timeout=180, check_rc=False)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    st = status()
    proxies = proxy_urls_from_status(st, "serve_core", ["workers"])
    assert len(proxies) == 2, st.get("proxies")
    wait_for(lambda: all(requests.get(u, timeout=5).status_code == 200 for u in proxies), 60, "the app on both proxies")
    prom = st["prometheus"]["url"]

    # The load generator's metrics port, listed where the cluster's Prometheus discovers it.
    metrics_port = free_port()
    with open(st["prometheus"]["load_targets_file"], "w") as f:
        json.dump([{"targets": [f"127.0.0.1:{metrics_port}"], "labels": {"component": "loadgen"}}], f)
    argv = [sys.executable, "-m", "loadgen", "run", "--rate", str(RATE), "--duration", str(DURATION_S),
            "--metrics-port", str(metrics_port), "--linger-s", "5", "--out", str(tmp_path / "load")]
    for u in proxies:
        argv += ["--target", u]
    log = open(tmp_path / "loadgen.log", "w")
    load = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=cli_env(), cwd=REPO)
    started = time.time()
    try:
        time.sleep(max(0.0, started + KILL_AT_S - time.time()))
        fault = cluster("fault kill-replica", "--deployment", "Scaled", "--json", timeout=60, check_rc=False)
        assert fault.returncode == 0, f"{fault.stdout}\n{fault.stderr}"
        assert json.loads(fault.stdout)["target"]["pid"] > 0

        # Check while the load still runs; a busy machine may scrape late, so try again until the
        # load ends (presence only) and report every panel that never had data.
        time.sleep(max(0.0, started + CHECK_FROM_S - time.time()))
        required = [definitions.ACTOR_DIED.name, definitions.DECISION.name]
        while True:
            problems = check.check(prom, range_s=time.time() - started + 10, require_annotations=required)
            if not problems or time.time() > started + DURATION_S - 3:
                break
            time.sleep(2)
    finally:
        try:
            load.wait(DURATION_S + 60)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()
        log.close()
    panels = sum(len(d.panels()) for d in definitions.all_dashboards())
    assert not problems, f"{len(problems)} problem(s) in {panels} panels, their variables and annotations:\n" + \
        "\n".join(str(p) for p in problems)
    assert load.returncode == 0, (tmp_path / "loadgen.log").read_text()[-2000:]
