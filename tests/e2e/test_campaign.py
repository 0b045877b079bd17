"""Campaigns end to end: the CI campaign (chaos/campaigns/ci.yaml: a replica, the controller and a
worker's proxy killed one after another, about 4 minutes) run with `python -m chaos campaign` on
one real embedded cluster, its verdicts and report checked; then leaks planted on purpose on the
same cluster (a stray process among the cluster's, a child left running, a frozen replica, a
node gone, in netns mode a partition never healed) that the health check must report, and the
cluster healthy again once they are undone.

The cluster: a netns cluster this module brings up (as root, like tests/e2e/test_chaos_run.py),
or, with SERVE_CORE_CAMPAIGN_CLUSTER=NAME, a cluster already up (e.g. a loopback one: `serve-core
cluster up --name NAME --no-netns ...`), which is used as it is and left up."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from chaos.campaign.checker import HealthChecker
from chaos.campaign.health import HealthBounds
from chaos.run.resources import cluster_processes
from chaos.spec.experiment import Application
from chaos.targets.embedded import EmbeddedCluster
from tests.e2e.conftest import REPO, ROOT_MODE, cli_env, embedded_cluster, serve_core

GIVEN = os.environ.get("SERVE_CORE_CAMPAIGN_CLUSTER")
NAME = GIVEN or "campci"
pytestmark = pytest.mark.skipif(not GIVEN and not ROOT_MODE, reason="needs root and network namespaces, or "
                                "SERVE_CORE_CAMPAIGN_CLUSTER naming a cluster that is up")


@pytest.fixture(scope="module")
def campaign_cluster():
    if GIVEN:
        yield GIVEN
        return
    with embedded_cluster(NAME) as name:
        yield name


def test_ci_campaign_passes_with_the_cluster_healthy_between_runs(campaign_cluster, tmp_path):
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "chaos", "campaign", "chaos/campaigns/ci.yaml",
                        "--target", f"embedded:{campaign_cluster}", "--out", str(tmp_path), "--quiet"],
                       capture_output=True, text=True, timeout=1200, env=cli_env(), cwd=REPO)
    took = time.monotonic() - t
    print(p.stdout[-4000:], p.stderr[-3000:], f"campaign took {took:.0f}s")
    dirs = [d for d in os.listdir(tmp_path) if d.startswith("ci-")]
    assert len(dirs) == 1, (dirs, p.stdout, p.stderr)
    camp = tmp_path / dirs[0]
    doc = json.loads((camp / "campaign.json").read_text())
    report = (camp / "report.md").read_text()
    runs = doc["runs"]
    assert [r["name"] for r in runs] == ["ci_replica_kill", "ci_controller_kill", "ci_proxy_kill"]
    assert [r["verdict"] for r in runs] == ["passed"] * 3, [r["reasons"] for r in runs]
    checks = [doc["baseline"]] + [r["health"] for r in runs]
    assert all(h["healthy"] for h in checks), [h["findings"] for h in checks]
    assert p.returncode == 0 and doc["verdict"] == "passed" and doc["status"] == 0
    # Every run: the open-loop load sent everything it scheduled, its own report is linked and there.
    for r in runs:
        assert r["sent"] == 100 * 40 and r["ok"] + r["failed"] == r["sent"], r
        assert r["report"] == f"{r['run_dir']}/report.md" and (camp / r["report"]).is_file()
        summary = json.loads((camp / r["run_dir"] / "summary.json").read_text())
        assert summary["verdict"] == "passed" and summary["name"] == r["name"]
        assert f"[report]({r['report']})" in report
    # Every check looked: the probe deployed and answered through each of the 3 proxies, and went;
    # the processes were counted and sampled.
    for i, h in enumerate(checks):
        probe = h["probe"]
        assert probe["deployed"] and probe["deleted"] and len(probe["proxies"]) == 3, probe
        assert all(x["ok"] for x in probe["proxies"].values()), probe
        assert h["processes"]["controller"] == 1 and h["processes"]["proxy"] == 3, h["processes"]
        # The experiments' app has 2 replicas; before the first run a fresh cluster has none.
        replicas = h["processes"].get("replica", 0)
        assert replicas == 2 if i else replicas in (0, 2), (i, h["processes"])
        if replicas:
            assert h["usage"]["replica"]["count"] == 2 and 0 < h["usage"]["replica"]["max_rss_mib"] < 512
        assert set(h["timings"]) == {"status", "probe", "processes", "network"}
    assert report.startswith("# Campaign ci: PASSED\n")
    assert "3 of 3 runs passed; cluster healthy at every check" in report
    assert "| 1 | ci_replica_kill | serve_core | 3 | passed | 4,000 |" in report
    assert "## Processes, memory and open files" in report
    assert re.search(r"^\| replica \| (-|2 / \d+ / \d+) \| 2 / \d+ / \d+ \| 2 / \d+ / \d+ \| 2 / \d+ / \d+ \|$", report, re.M), report
    assert p.stdout.count("verdict: PASSED") == 3 and p.stdout.count("healthy (") == 4


@pytest.fixture
def target(campaign_cluster):
    """The cluster with the fault app deployed (as the campaign leaves it; done here too so that
    each test also runs alone)."""
    cluster = EmbeddedCluster(campaign_cluster)
    cluster.deploy(Application(import_path="tests.e2e.fault_app:app"), "serve_core")
    return cluster


def messages(report):
    return [str(f) for f in report.findings]


def test_health_check_reports_leaks_planted_on_purpose(target, tmp_path):
    checker = HealthChecker(target, HealthBounds(settle_s=120, probe=False))
    base = checker.check("before")
    assert base.healthy, messages(base)
    state_dir = os.path.dirname(target.status()["state_file"])
    replica = next(p for p in cluster_processes(target) if p.role == "replica")
    # A stray process among the cluster's (its command line names the state directory, as a
    # relaunched gcs_server's does; started by a shell that exits, so it is no child of ours), a
    # child of this process left running, and a replica frozen (SIGSTOP).
    stray = int(subprocess.run(["sh", "-c", f"{sys.executable} -c 'import time; time.sleep(600)' "
                                            f"{state_dir}/planted-leak >/dev/null 2>&1 & echo $!"],
                               capture_output=True, text=True, check=True).stdout.strip())
    child = subprocess.Popen(["sleep", "600"])
    os.kill(replica.pid, signal.SIGSTOP)
    try:
        found = checker.check("planted", settle_s=0)
    finally:
        for pid, sig in ((replica.pid, signal.SIGCONT), (stray, signal.SIGKILL)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # the controller replaced the frozen replica meanwhile
        child.kill()
        child.wait()
    text = messages(found)
    assert any("process(es) run, there were before the campaign 0: 1 leaked" in m for m in text), text
    assert f"processes: pid {child.pid} (sleep 600), started by this campaign, still runs" in text, text
    assert f"processes: replica pid {replica.pid} on {replica.node} is stopped (SIGSTOP: a freeze that was never " \
           "thawed)" in text, text
    # Bounds every process breaks.
    tight = HealthChecker(target, HealthBounds(settle_s=0, probe=False, max_rss_mib={"default": 1},
                                               max_open_fds={"default": 2}))
    text = messages(tight.check("tight bounds"))
    for role in ("controller", "proxy", "replica", "gcs", "raylet"):
        assert any(m.startswith(f"memory: {role} pid ") and "above its bound of 1 MiB" in m for m in text), (role, text)
        assert any(m.startswith(f"fds: {role} pid ") and "above its bound of 2" in m for m in text), (role, text)
    assert checker.check("after the plants are gone").healthy


@pytest.mark.skipif(not ROOT_MODE, reason="partitions need network namespaces")
def test_health_check_reports_a_partition_never_healed(target):
    if target.status().get("mode") != "netns":
        pytest.skip("a loopback cluster has no network faults")
    checker = HealthChecker(target, HealthBounds(settle_s=60, probe=False))
    assert checker.check("before").healthy
    serve_core("cluster", "fault", "partition", "--name", target.name, "--node", "w2", check=True)
    try:
        text = messages(checker.check("cut", settle_s=0))
    finally:
        serve_core("cluster", "fault", "heal", "--name", target.name, "--node", "w2", check=True)
        # Cut off for longer than Ray's node health checks allow (3 s), w2 is declared dead, maybe
        # only after the heal: start it again, as an experiment's restart-node rollback does, so the
        # next test begins with the whole cluster.
        serve_core("cluster", "fault", "kill-node", "--name", target.name, "--node", "w2")
        serve_core("cluster", "fault", "restart-node", "--name", target.name, "--node", "w2", check=True, timeout=300)
    assert "network: node w2: iptables chain SC-FAULT still there with 1 rule(s) (a partition or packet loss not " \
           "healed)" in text, text
    healed = checker.check("healed", settle_s=120)
    assert healed.healthy, messages(healed)


def test_health_check_reports_a_node_gone_and_is_clean_once_it_is_back(target):
    checker = HealthChecker(target, HealthBounds(settle_s=120, probe=True))
    assert checker.check("before").healthy
    # The controller spreads replicas but never moves running ones: after the previous test's node
    # loss both may be on w1, and then w2's loss takes none of them.
    work = ((target.status().get("applications") or {}).get("default") or {}).get("deployments", {}).get("Work") or {}
    replica_on_w2 = bool((work.get("replicas_per_node") or {}).get("w2"))
    serve_core("cluster", "fault", "kill-node", "--name", target.name, "--node", "w2", check=True)
    try:
        gone = checker.check("w2 killed", settle_s=0)
        text = messages(gone)
        assert "cluster: node w2 is down" in text, text
        # Its replica: gone from the count or listed on w2; or, when the controller ran on w2, the
        # controller not answering (Ray places it on any node).
        assert not replica_on_w2 or any("default/Work" in m or "the controller does not answer" in m for m in text), text
        assert any(m.startswith("processes: ") and "missing" in m for m in text), text
        assert gone.probe is None and "deploy: not tried on a cluster that is not whole" in gone.skipped
    finally:
        serve_core("cluster", "fault", "restart-node", "--name", target.name, "--node", "w2", check=True, timeout=300)
    # Back: whole again within the settle time, deployable through every proxy, nothing left over.
    after = checker.check("w2 back")
    assert after.healthy, messages(after)
    assert after.probe is not None and len(after.probe["proxies"]) == 3
