"""``python -m chaos``: validate prints the plan, errors name the field, run maps the verdict
to the exit status (the runner itself faked), the progress printer."""

import io
import json
import os

import pytest

import chaos.run.runner
from chaos.cli import ProgressPrinter, main
from chaos.run.journal import Abort, FaultFinished, FaultStarted, LoadStarted, ProbeResult, RunFinished
from chaos.run.options import RunResult

pytestmark = pytest.mark.unit

HERE = os.path.dirname(__file__)
REPLICA_KILLS = os.path.join(HERE, "..", "..", "chaos", "experiments", "replica_kills.yaml")
NODE_LOSS = os.path.join(HERE, "..", "..", "chaos", "experiments", "worker_node_loss.yaml")


def test_validate_prints_the_experiment_and_its_plan(capsys):
    assert main(["validate", REPLICA_KILLS]) == 0
    out = capsys.readouterr().out
    assert out.startswith("experiment replica_kills: ")
    assert "backend serve_core, seed 7" in out and "constant 100 req/s for 90s" in out
    assert "before 0-20s | during 20-70s | after 70-90s" in out
    assert "availability >= 0.999; latency p99 < 200 ms; recovery within 20s" in out
    assert "burn rate > 14.4 over 30s; client failures > 500" in out
    planned = [line for line in out.splitlines() if line.startswith("  t+")]
    assert len(planned) == 3
    assert planned[0].split()[:2] == ["t+", "25.000s"] and "kill-replica deployment=Work (seed=" in planned[0]


def test_validate_applies_the_overrides(capsys):
    assert main(["validate", NODE_LOSS, "--target", "embedded:lab", "--backend", "ray_serve", "--seed", "99"]) == 0
    out = capsys.readouterr().out
    assert "embedded:lab (head + 2 workers), backend ray_serve, seed 99" in out
    assert "kill-node node=w" in out and "restart-node node=w" in out


def test_validate_is_deterministic(capsys):
    main(["validate", REPLICA_KILLS, "--seed", "4"])
    first = capsys.readouterr().out
    main(["validate", REPLICA_KILLS, "--seed", "4"])
    assert capsys.readouterr().out == first


def test_validate_json(capsys):
    assert main(["validate", REPLICA_KILLS, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["experiment"]["name"] == "replica_kills"
    assert [f["at_s"] for f in doc["plan"]] == [25, 40, 55]


def test_validate_an_invalid_file_names_field_value_and_fix(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    text = open(REPLICA_KILLS).read().replace("schedule: {every_s: 15, start_s: 25, end_s: 55}",
                                              "schedule: {at_s: 80}")
    path.write_text(text)
    assert main(["validate", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: line ")
    assert "invalid method[0].schedule.at_s=80.0: must be inside the during window [20, 70)" in err


def test_validate_missing_file(capsys):
    assert main(["validate", "nope.yaml"]) == 3
    assert "no such file" in capsys.readouterr().err


def test_list_shows_the_ready_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "replica_kills.yaml  90s" in out and "mixed_soak.yaml  600s" in out and "INVALID" not in out


@pytest.mark.parametrize("verdict,interrupted,code", [("passed", False, 0), ("failed", False, 1),
                                                      ("aborted", False, 2), ("aborted", True, 130)])
def test_run_exit_status(monkeypatch, tmp_path, verdict, interrupted, code):
    seen = {}

    def fake_run(exp, listeners, options):
        seen.update(exp=exp, options=options)
        return RunResult(verdict, [], str(tmp_path), str(tmp_path / "journal.json"), interrupted)

    monkeypatch.setattr(chaos.run.runner, "run_experiment", fake_run)
    assert main(["run", REPLICA_KILLS, "--out", str(tmp_path), "--seed", "8", "--no-deploy"]) == code
    assert seen["exp"].seed == 8 and seen["options"].out_root == str(tmp_path) and seen["options"].deploy is False


def test_run_unreachable_cluster_exits_3(monkeypatch, capsys):
    from chaos.targets.base import TargetError

    def fake_run(exp, listeners, options):
        raise TargetError("cannot reach cluster 'default'", "no state file", "bring it up")

    monkeypatch.setattr(chaos.run.runner, "run_experiment", fake_run)
    assert main(["run", REPLICA_KILLS]) == 3
    assert "error: cannot reach cluster 'default': no state file; bring it up" in capsys.readouterr().err


def test_progress_printer_lines():
    out = io.StringIO()
    p = ProgressPrinter(out)
    p(LoadStarted(100.0, ["http://a:8000"]))
    p(FaultStarted(125.0, "f0", "method", {"description": "kill-node node=w1"}, 25.0))
    p(FaultFinished(125.5, "f0", "method", False, None, None, None, "boom", 0.5))
    p(ProbeResult(130.0, "before", 100.0, 120.0, [{"name": "availability", "value": 0.9995, "ok": True},
                                                  {"name": "p99", "value": 300.0, "ok": False}]))
    p(Abort(140.0, "error budget burn rate 20.0 > 14.4", {}, 40.0))
    p(RunFinished(150.0, "aborted", ["error budget burn rate 20.0 > 14.4"], None, None, warnings=["w"]))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[    0.0s] load started on http://a:8000"
    assert lines[1] == "[   25.0s] method f0: kill-node node=w1"
    assert lines[2] == "[   25.5s] method f0 FAILED: boom (0.5s)"
    assert lines[3] == "[   30.0s] steady state before: availability=0.9995 ok; p99=300 FAIL"
    assert lines[4] == "[   40.0s] ABORT: error budget burn rate 20.0 > 14.4"
    assert lines[5:] == ["verdict: ABORTED", "  - error budget burn rate 20.0 > 14.4", "  warning: w"]


def test_quiet_printer_prints_only_the_verdict():
    out = io.StringIO()
    p = ProgressPrinter(out, quiet=True)
    p(LoadStarted(100.0, ["http://a:8000"]))
    p(RunFinished(150.0, "passed", [], None, None))
    assert out.getvalue() == "verdict: PASSED\n"
