"""The production patterns under chaos, on a real embedded cluster: a rolling update with
replicas killed while it rolls out loses no request and ends on the new version
(chaos/experiments/rollout_replica_kill.yaml), and a canary that breaks its SLO is rolled back,
its share 0 in Prometheus, with few requests lost (chaos/experiments/canary_rollback.yaml).
Asserts counts and verdicts, never timings."""

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.e2e.conftest import CLUSTER_ROOT, REPO, cli_env, embedded_cluster, needs_netns

NAME = "patterns"
pytestmark = needs_netns


@pytest.fixture(scope="module")
def patterns_cluster():
    with embedded_cluster(NAME) as name:
        yield name


def run(experiment, cluster, out):
    p = subprocess.run([sys.executable, "-m", "chaos", "run", f"chaos/experiments/{experiment}.yaml",
                        "--target", f"embedded:{cluster}", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env=cli_env(), cwd=REPO)
    print(p.stdout[-3000:], p.stderr[-2000:])
    runs = [d for d in os.listdir(out) if d.startswith(f"{experiment}-")]
    assert len(runs) == 1, (runs, p.stdout, p.stderr)
    journal = json.loads((out / runs[0] / "journal.json").read_text())
    summary = json.loads((out / runs[0] / "summary.json").read_text())
    return p, journal, summary


def worker_urls(cluster):
    with open(os.path.join(CLUSTER_ROOT, cluster, "state.json")) as f:
        nodes = json.load(f)["plan"]["nodes"]
    return [f"http://{n['address']}:8000/" for n in nodes if n["role"] == "worker"]


def test_replicas_killed_during_a_rollout_lose_nothing(patterns_cluster, tmp_path):
    p, journal, summary = run("rollout_replica_kill", patterns_cluster, tmp_path)
    assert p.returncode == 0 and summary["verdict"] == "passed", summary["reasons"]
    assert summary["sent"] == 60 * 65 and summary["failed"] == 0
    faults = journal["faults"]
    assert [f["action"] for f in faults] == ["deploy", "kill-replica", "kill-replica"] and all(f["ok"] for f in faults)
    rollout = faults[0]["output"]
    during = [f for f in faults[1:] if rollout["started"] <= f["output"]["started"] <= rollout["ended"]]
    # Fault commands start late on a saturated machine; say how many kills hit the rollout itself.
    print(f"[rollout] {rollout['ended'] - rollout['started']:.1f} s; replica kills during it: {len(during)} of 2")
    # The rollout finished: every replica answers as v2.
    versions = {httpx.get(url, timeout=5).json()["version"] for url in worker_urls(patterns_cluster) for _ in range(10)}
    assert versions == {"v2"}


def test_a_canary_breaking_its_slo_is_rolled_back(patterns_cluster, tmp_path):
    p, journal, summary = run("canary_rollback", patterns_cluster, tmp_path)
    assert p.returncode == 0 and summary["verdict"] == "passed", summary["reasons"]
    assert [f["action"] for f in journal["faults"]] == ["deploy"] and journal["faults"][0]["ok"]
    # The canary did break (some of its answers failed), and only until it was rolled back.
    assert 0 < summary["failed"] < 0.01 * summary["sent"], (summary["failed"], summary["sent"])
    after = {r["name"]: r for r in journal["steady_state"]["after"]["results"]}
    assert after["canary rolled back"]["value"] == 0 and after["canary rolled back"]["ok"] is True
    before = {r["name"]: r for r in journal["steady_state"]["before"]["results"]}
    assert before["canary rolled back"]["value"] == pytest.approx(0.1)  # it had traffic before
    status = httpx.get(worker_urls(patterns_cluster)[0] + "canary/status", timeout=5).json()
    assert status["state"] == "rolled_back" and status["share"] == 0.0 and "error rate" in status["reason"]
