"""Batch scoring through a real deployment: killed halfway (SIGKILL of the `serve-core score`
process), it resumes and scores only what was not finished; a method that breaks the
one-result-per-item contract fails its batches into the errors file, never into the results."""

import json
import os
import signal
import subprocess
import sys
import time

import ray

import serve_core as serve
from tests.integration import apps
from tests.integration.conftest import in_flight
from tests.waiting import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 400


def score_cmd(src, out, *extra):
    address = ray.get_runtime_context().gcs_address
    return [sys.executable, "-m", "serve_core.cli", "score", str(src), "--app", "score", "--out", str(out),
            "--batch-size", "10", "--concurrency", "2", "--address", address, *extra]


def env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def test_killed_halfway_it_resumes_without_rescoring_finished_items(serve_core_app, tmp_path):
    src, out, scored_log = tmp_path / "items.jsonl", tmp_path / "out.jsonl", tmp_path / "scored.log"
    src.write_text("".join(json.dumps({"id": f"item-{i}", "x": i}) + "\n" for i in range(N)))
    serve.run(apps.Scorer.bind(str(scored_log)), name="score", route_prefix=None)

    p = subprocess.Popen(score_cmd(src, out), env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(lines(out)) < N // 4:
        assert p.poll() is None, p.stdout.read()
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    finished = {r["id"] for r in lines(out)}
    assert N // 4 <= len(finished) < N  # killed halfway
    # Batches the dead process had in flight finish (or are cancelled) at the replicas first.
    wait_for(lambda: in_flight("score") == 0, 30, "no batch left running at the replicas")
    scored_before = len(scored_log.read_text().splitlines())

    done = subprocess.run(score_cmd(src, out), env=env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(finished)} already done" in done.stdout
    results = lines(out)
    assert sorted(r["id"] for r in results) == sorted(f"item-{i}" for i in range(N))  # each once
    assert all(r["result"] == {"double": 2 * int(r["id"].split("-")[1])} for r in results)
    rescored = set(scored_log.read_text().splitlines()[scored_before:]) & finished
    assert not rescored, f"{len(rescored)} finished items scored again"


def test_a_method_breaking_the_contract_fails_batches_into_the_errors_file(serve_core_app, tmp_path):
    src, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": f"i{i}", "x": i}) + "\n" for i in range(20)))
    serve.run(apps.Scorer.bind(str(tmp_path / "scored.log")), name="score", route_prefix=None)
    p = subprocess.run(score_cmd(src, out, "--method", "short", "--retries", "0"), env=env(), cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "20 item(s) failed" in p.stderr and "run the same command again" in p.stderr
    assert lines(out) == []
    errors = lines(tmp_path / "out.jsonl.errors.jsonl")
    assert len(errors) == 20 and "returned 9 results for a batch of 10" in errors[0]["error"]
