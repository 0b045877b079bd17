"""The testbed's main job end to end: a chaos experiment (chaos/experiments/ci_smoke.yaml: a
replica killed, then the head node killed and restarted, under 100 requests/s) run with
`python -m chaos run` on a real embedded cluster, judged in its Prometheus, with the journal,
the report (Markdown and HTML) and the summary checked; and watched meanwhile in the live view
(`serve-core ui`) in a real browser (Chromium through Playwright). Asserts counts; the one
timing, a fault on the page within 3 s of its injection, is the live view's promise."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import REPO, cli_env, embedded_cluster, live_view, needs_netns

NAME = "chaosci"
pytestmark = needs_netns


@pytest.fixture
def chaos_cluster():
    with embedded_cluster(NAME) as name:
        yield name


SEEN_JS = "() => Array.from(document.querySelectorAll('#chart-rate g.fault')).map(g => g.dataset.fault)"
REPLICAS_JS = ("() => Array.from(document.querySelectorAll('[data-deployment=Work] tbody tr'))"
               ".map(tr => Array.from(tr.cells).slice(1).map(td => td.textContent))")


def test_ci_experiment_passes_with_zero_failed_requests(chaos_cluster, tmp_path, page):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    seen: dict[str, float] = {}  # fault id -> when the page first drew it on the timeline
    with live_view("--target", f"embedded:{chaos_cluster}", "--runs", str(tmp_path)) as url:
        page.goto(url)
        # The cluster, before any run: its three nodes (the run deploys the application).
        page.wait_for_function("() => document.querySelectorAll('#nodes tbody tr').length === 3", timeout=30_000)
        replicas: set[tuple[str, ...]] = set()  # (state, node, version) rows of the deployment seen on the page
        logs = tmp_path / "runner.out", tmp_path / "runner.err"
        with open(logs[0], "w") as stdout, open(logs[1], "w") as stderr:
            runner = subprocess.Popen([sys.executable, "-m", "chaos", "run", "chaos/experiments/ci_smoke.yaml",
                                    "--target", f"embedded:{chaos_cluster}", "--out", str(tmp_path)],
                                   stdout=stdout, stderr=stderr, text=True, env=cli_env(), cwd=REPO)
        deadline = time.monotonic() + 600
        while runner.poll() is None and time.monotonic() < deadline:
            for fid in page.evaluate(SEEN_JS):
                seen.setdefault(fid, time.time())
            replicas.update(tuple(r) for r in page.evaluate(REPLICAS_JS))
            page.wait_for_timeout(200)
        runner.wait(timeout=60)
        out, err = logs[0].read_text(), logs[1].read_text()
        page.wait_for_selector(", ".join(f"#verdict[data-verdict={v}]" for v in ("passed", "failed", "aborted")),
                               timeout=20_000)  # the verdict, once the runner wrote it
        shown = page.locator("#verdict").get_attribute("data-verdict"), page.locator("#run-state").inner_text()
    p = subprocess.CompletedProcess(runner.args, runner.returncode, out, err)
    print(p.stdout[-3000:], p.stderr[-2000:])
    runs = [d for d in os.listdir(tmp_path) if d.startswith("ci_smoke-")]
    assert len(runs) == 1, (runs, p.stdout, p.stderr)
    run = tmp_path / runs[0]
    journal = json.loads((run / "journal.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    report = (run / "report.md").read_text()
    assert p.returncode == 0, summary["reasons"]
    assert summary["verdict"] == "passed" and "# ci_smoke: PASSED" in report
    # Every scheduled request was sent (open loop) and answered with a 2xx.
    assert summary["sent"] == 100 * 60 and summary["failed"] == 0 and summary["ok"] == summary["sent"]
    # The three faults happened, at the targets the journal names.
    faults = journal["faults"]
    assert [f["action"] for f in faults] == ["kill-replica", "kill-node", "restart-node"]
    assert all(f["ok"] for f in faults), faults
    assert faults[0]["output"]["target"]["deployment"] == "Work" and faults[0]["output"]["target"]["pid"] > 0
    assert faults[1]["output"]["target"]["node"] == "head"
    # Prometheus saw what the client saw: availability within 0.1 percentage point.
    cross = journal["crosscheck"]
    assert cross["availability_ok"] is True, cross["summary"]
    assert summary["availability_prometheus"] == pytest.approx(1.0, abs=0.001)
    # The per-request records are all there.
    with open(run / "load" / "records.jsonl") as f:
        assert sum(1 for _ in f) == summary["sent"]
    # report.html: self-contained, one plot per view (rate and errors, latency, replicas), every
    # injected fault marked on each; the series behind it came from Prometheus and are journaled.
    html = (run / "report.html").read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*https?://""", html, re.I), "report.html fetches from elsewhere"
    assert not re.search(r"<script|<link|@import|url\(", html, re.I)
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(svgs) == 3, re.findall(r'<p class="missing">.*?</p>', html)
    for svg in svgs:
        marked = re.findall(r'<g class="fault"><title>(f\d+) ', svg)
        assert marked == [f["id"] for f in faults], marked
    assert "Plot missing" not in html and "Part missing" not in html
    assert all(e["error"] is None for e in journal["series"]["plots"].values()), journal["series"]["plots"]
    # The alerts were evaluated over the run (whether any would have fired depends on the run).
    assert journal["alerts"]["conditions"] and all(e["error"] is None for e in journal["alerts"]["conditions"].values())
    assert "## Alerts that would have fired" in report and "<h2>Alerts that would have fired</h2>" in html
    assert isinstance(summary["alerts"], list)
    # The live view drew each fault within 3 s of its injection (the journal's launch time),
    # and said nothing wrong in the browser's console.
    late = {f["id"]: round(seen[f["id"]] - f["launched"], 2) for f in faults if seen.get(f["id"], 1e18) - f["launched"] > 3}
    assert set(seen) >= {f["id"] for f in faults} and not late, (seen, late)
    assert shown == (summary["verdict"], summary["verdict"]) and problems == [], (shown, problems)
    # The cluster panel showed the deployment's replicas running on the workers, with their version.
    running = {(node, version) for state, node, version in replicas if state == "RUNNING"}
    assert {node for node, _ in running} == {"w1", "w2"} and all(version for _, version in running), replicas
