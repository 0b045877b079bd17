"""The tuner end to end: `python -m tune run tune/sweeps/ci_small.yaml` (8 settings in the
simulator, one 30 s real confirmation through the chaos runner) on a real embedded cluster it
brings up and takes down. Checks the report has a recommendation and the real run's figures;
asserts counts, never timings."""

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO, cli_env, embedded_cluster, needs_netns

NAME = "tuneci"
pytestmark = needs_netns


@pytest.fixture
def tune_cluster():
    with embedded_cluster(NAME) as name:
        yield name


def test_small_sweep_recommends_a_confirmed_setting(tune_cluster, tmp_path):
    p = subprocess.run([sys.executable, "-m", "tune", "run", "tune/sweeps/ci_small.yaml", "--target",
                        f"embedded:{tune_cluster}", "--out", str(tmp_path / "tune"), "--chaos-out",
                        str(tmp_path / "runs"), "--work-dir", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=600, env=cli_env(), cwd=REPO)
    print(p.stdout[-3000:], p.stderr[-3000:])
    (report,) = list((tmp_path / "tune").iterdir())
    result = json.loads((report / "result.json").read_text())
    assert result["candidates"] == 8 and len(result["real_runs"]) == 1
    run = result["real_runs"][0]
    assert run["error"] is None and os.path.isdir(run["run_dir"]), run
    measured = run["measured"]
    assert measured["requests"] == 10 * 10 + 40 * 20  # every scheduled request was sent
    assert measured["replica_seconds"] > 0 and measured["availability"] is not None
    assert run["error_vs_real"]["replica_seconds_ratio"] is not None
    rec = result["recommendation"]
    assert rec is not None and p.returncode == 0, (run["verdict"], run["reasons"])
    assert rec["measured"] == measured and rec["label"] == run["label"]
    md = (report / "report.md").read_text()
    assert "## Real runs and the simulator's error" in md and "```yaml" in md
    assert "<svg" in (report / "report.html").read_text()
