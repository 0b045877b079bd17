"""The autoscaling benchmark runs end to end and writes its figures (no timing is asserted)."""

import json
import subprocess
import sys

from tests.e2e.conftest import REPO, cli_env, free_port


def test_autoscale_bench_smoke_writes_both_backends(tmp_path):
    port = free_port()
    p = subprocess.run(
        [sys.executable, "-m", "bench.autoscale_bench", "--smoke", "--out-dir", str(tmp_path), "--port", str(port)],
        capture_output=True, text=True, timeout=900, cwd=REPO, env=cli_env(),
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    doc = json.loads((tmp_path / "autoscale.json").read_text())
    for backend in ("ray_serve", "serve_core"):
        b = doc["backends"][backend]
        assert b.get("error") is None, b.get("error")
        cold, step = b["cold_start"], b["step"]
        assert cold["statuses"] and all(s == 200 for s in cold["statuses"]), cold["reps"]
        assert cold["first_response_p50_s"] > 0 and cold["time_to_zero_after_last_s"] > 0
        assert step["ok"] > 0 and step["time_to_target_s"] > 0 and step["p50_ms"] > 0 and step["p99_ms"] > 0
    md = (tmp_path / "autoscale.md").read_text()
    assert "serve_core / ray_serve" in md and "goal" in md
