"""The benchmark runs end to end and writes its figures (no timing is asserted)."""

import json
import subprocess
import sys

from tests.e2e.conftest import REPO, cli_env, free_port


def test_http_bench_smoke_writes_every_backend(tmp_path):
    port = free_port()
    p = subprocess.run(
        [sys.executable, "-m", "bench.http_bench", "--smoke", "--out-dir", str(tmp_path), "--port", str(port)],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=cli_env(),
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    doc = json.loads((tmp_path / "http.json").read_text())
    for backend in ("ray_serve", "serve_core", "serve_core_tls"):
        b = doc["backends"][backend]
        assert b.get("error") is None, b.get("error")
        assert b["rps_16"] > 0 and b["p50_ms_1"] > 0
    assert doc["backends"]["serve_core_tls"]["url"].startswith("https://")  # wrk measured HTTPS
    md = (tmp_path / "http.md").read_text()
    assert "serve_core / ray_serve" in md and "goal" in md and "The cost of TLS" in md
