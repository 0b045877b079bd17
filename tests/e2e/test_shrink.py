"""`python -m chaos shrink` end to end: tests/e2e/shrink_planted.yaml (twelve harmless faults and
one planted failing one: node w1, the load's only entry, frozen for 6 s) run on a real embedded
cluster so that it fails, then shrunk from its run directory. The minimal schedule must be
exactly the planted fault, found within the run budget, every candidate a real run. Works in
loopback and netns mode (the faults are freezes, CPU burns and kills; none needs a namespace).

By default the cluster is the e2e tier's chaos cluster (test_chaos_run's name, one at a time);
``SHRINK_E2E_CLUSTER=NAME`` runs it on a cluster that is up already and leaves it up (e.g. a
loopback one: `serve-core cluster up --name shrk --no-netns ...`)."""

import json
import os
import subprocess
import sys
import time

import pytest

from chaos.spec.loading import load_experiment
from tests.e2e.conftest import REPO, cli_env, embedded_cluster

NAME = "chaosci"
CLUSTER_ENV = "SHRINK_E2E_CLUSTER"
EXPERIMENT = "tests/e2e/shrink_planted.yaml"
MAX_RUNS = 12  # ddmin needs 8 here: the replay, 13 -> 7 -> 4 | 3 -> 2 -> 1 | 1, and the empty schedule


@pytest.fixture(scope="module")
def shrink_cluster():
    given = os.environ.get(CLUSTER_ENV)
    if given:
        yield given
        return
    with embedded_cluster(NAME) as name:
        yield name


def chaos(*args, timeout):
    p = subprocess.run([sys.executable, "-m", "chaos", *args], capture_output=True, text=True, timeout=timeout,
                       env=cli_env(), cwd=REPO)
    print(f"$ python -m chaos {' '.join(args)}  -> {p.returncode}\n{p.stdout[-6000:]}\n{p.stderr[-3000:]}")
    return p


@pytest.mark.timeout(3600)
def test_shrink_finds_the_planted_fault_among_a_dozen_harmless_ones(shrink_cluster, tmp_path):
    t0 = time.monotonic()
    p = chaos("run", EXPERIMENT, "--target", f"embedded:{shrink_cluster}", "--out", str(tmp_path / "runs"), "--quiet",
              timeout=900)
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1, (runs, p.stdout, p.stderr)
    run = tmp_path / "runs" / runs[0]
    journal = json.loads((run / "journal.json").read_text())
    assert p.returncode == 2 and journal["verdict"] == "aborted", journal["reasons"]  # the planted fault broke it
    assert [a["condition"]["kind"] for a in journal["aborts"]] == ["client_failures"]
    assert len(journal["plan"]) == 13 and len(journal["faults"]) >= 7  # it aborts before the last ones
    first_s = time.monotonic() - t0

    out = tmp_path / "shrink"
    s = chaos("shrink", str(run), "--no-deploy", "--max-runs", str(MAX_RUNS), "--max-time", "3000", "--out", str(out),
              timeout=3300)
    assert s.returncode == 0, s.stdout[-3000:]
    data = json.loads((out / "shrink.json").read_text())
    minimal = load_experiment(str(out / "minimal.yaml"))
    print(f"first run {first_s:.0f}s, shrink {data['seconds']:.0f}s in {data['runs']} runs, "
          f"total {time.monotonic() - t0:.0f}s")
    # Exactly the planted fault, pinned as planned: w1 frozen for 6 s at 5.5 s.
    assert data["complete"] and data["reproduced"] and data["signature"] == ["abort:client_failures", "failed requests"]
    assert [f["name"] for f in data["minimal"]] == ["F6 planted"]
    assert [(f.action, f.target.node, f.args.mode, f.duration_s, f.schedule.at_s) for f in minimal.method] == \
        [("partition", "w1", "freeze", 6.0, 5.5)]
    assert minimal.load == load_experiment(EXPERIMENT).load
    # Within the budget; the replay failed with every fault, the empty schedule passed.
    trials = data["trials"]
    assert len(trials) == data["runs"] <= MAX_RUNS
    assert trials[0]["purpose"] == "replay" and len(trials[0]["faults"]) == 13 and trials[0]["fails"]
    assert trials[-1]["faults"] == [] and not trials[-1]["fails"]
    # A candidate fails exactly when it holds the planted fault: the others are harmless.
    assert [t["fails"] for t in trials] == ["F6" in t["faults"] for t in trials]
    # Every candidate was a real run of the faults its file names.
    for t in trials:
        cand = load_experiment(str(out / t["yaml"]))
        assert [f.name.split()[0] for f in cand.method] == t["faults"]
        ran = json.loads((out / t["run_dir"] / "journal.json").read_text())
        assert ran["verdict"] == t["verdict"] and len(ran["plan"]) == len(t["faults"])
    summary = (out / "shrink.md").read_text()
    assert "13 faults -> 1" in summary and "1-minimal" in summary and "minimal.yaml" in s.stdout
