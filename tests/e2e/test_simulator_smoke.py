"""The simulator check runs a real serve_core and the simulator on one trace and writes the
comparison (no timing or accuracy is asserted); `serve-core simulate` runs as a user runs it."""

import json
import subprocess
import sys

from tests.e2e.conftest import REPO, cli_env, free_port, serve_core


def test_simulator_check_smoke_writes_the_comparison(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "bench.simulator_check", "--smoke", "--out-dir", str(tmp_path), "--port", str(free_port())],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=cli_env(),
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    doc = json.loads((tmp_path / "simulator.json").read_text())
    assert doc["status"] == "ok" and doc.get("error") is None
    obs, cmp = doc["observed"], doc["comparison"]
    assert obs["sent"] > 0 and obs["failed"] == 0 and obs["ok"] == obs["sent"]
    assert obs["max_replicas"] >= 1 and obs["p99_s"] > 0
    for key in ("replica_mae", "replica_max_error", "target_mae", "p50_ratio", "p99_ratio"):
        assert cmp[key] is not None and cmp[key] >= 0, key
    assert cmp["time_to_peak_s"]["difference"] is not None and set(cmp["goals"]) == {"replica_mae", "p99_within"}
    assert doc["predicted"]["summary"]["requests"] == obs["sent"]
    md = (tmp_path / "simulator.md").read_text()
    assert "predicted" in md and "goal" in md


def test_serve_core_simulate_command(tmp_path):
    trace = tmp_path / "trace.txt"
    trace.write_text("".join(f"{i / 20:.3f}\n" for i in range(400)))  # 20 s at 20 req/s
    p = serve_core("simulate", "--trace", str(trace), "--json", "--set", "autoscaling_config.max_replicas=4",
                   "--set", "autoscaling_config.target_ongoing_requests=1", "--set", "service_time=0.2",
                   "--set", "max_ongoing_requests=2", timeout=120, check=True)
    doc = json.loads(p.stdout)
    assert doc["summary"]["requests"] == 400 and doc["summary"]["max_replicas"] == 4
    p = serve_core("simulate", "--trace", str(tmp_path / "missing.txt"), "--set", "service_time=0.1", timeout=120)
    assert p.returncode == 2 and "does not exist" in p.stderr
