"""The uptime report: report.md and summary.json from a real journal (trimmed, in data/), and
from failed and aborted variants of it; the listener; ``python -m chaos report``."""

import copy
import dataclasses
import json
import os

import pytest

import chaos.runner
from chaos.cli import main
from chaos.journal import FaultFinished, FaultStarted, LoadStarted, ProbeResult, RunFinished, RunStarted
from chaos.report import ReportListener, pct, recoveries, render, summarize, write_report
from chaos.runner import RunResult
from chaos.slo import judge_recovery
from chaos.slo_spec import Recovery

pytestmark = pytest.mark.unit

HERE = os.path.dirname(__file__)
JOURNAL = os.path.join(HERE, "data", "chaos_journal.json")
REPLICA_KILLS = os.path.join(HERE, "..", "..", "chaos", "experiments", "replica_kills.yaml")


@pytest.fixture
def journal():
    with open(JOURNAL) as f:
        return json.load(f)


def _result(j, window, kind):
    return next(r for r in j["steady_state"][window]["results"] if r["kind"] == kind)


@pytest.fixture
def failed(journal):
    """Failures seen by the client, the during window's availability violated, one fault slow to
    recover and one not recovered, Prometheus and the client apart by more than 0.1 pp."""
    j = copy.deepcopy(journal)
    j["verdict"] = "failed"
    j["reasons"] = ["during: availability = 0.9985 (availability 0.998500 < objective 0.999 over 50s)",
                    "whole: recovery = 27.577 (not recovered)"]
    j["client_summary"].update(ok=13480, failed=20, failed_by_cause={"503": 5, "refused": 15}, retried=7)
    _result(j, "during", "availability").update(value=0.9985, verdict="violated", ok=False)
    # the recovery SLO's detail as chaos.slo writes it: errors 1 s after f0 until 5 s, none after f1,
    # errors from 2 s after f2 to the end
    f0, f1, f2 = (f["started"] for f in j["faults"])
    end = j["steady_state"]["whole"]["end"]
    points = [(f0 + k, 0.5 if f0 + 1 <= f0 + k < f0 + 5 or f0 + k >= f2 + 2 else 0.0) for k in range(int(end - f0) + 1)]
    rec = dataclasses.asdict(judge_recovery(Recovery(max_s=20, window_s=10), points, [f0, f1, f2], "q"))
    rec["verdict"] = str(rec["verdict"])
    _result(j, "whole", "recovery").update(rec)
    xc = j["crosscheck"]
    xc["client"].update(total=13500, good=13480, availability=13480 / 13500, failures={"503": 5, "refused": 15},
                        unanswered=15, answered=13485)
    xc["server"].update(total=13485.0, availability=13480 / 13485)
    xc.update(availability_diff_pp=(13480 / 13500 - 13480 / 13485) * 100, availability_ok=False, ok=False,
              unseen_by_server=15.0, summary=xc["summary"].replace("(within 0.1 pp)", "(outside 0.1 pp)"))
    return j


@pytest.fixture
def aborted(journal):
    """Aborted by the burn rate at 47 s: no after or whole window, the during probe failed, the second
    kill failed, the third never ran, a rollback ran, no cross-check, the load stopped early."""
    j = copy.deepcopy(journal)
    reason = "error budget burn rate 20.0 > 14.4 over the last 30s (objective 0.999)"
    j.update(verdict="aborted", reasons=[reason], crosscheck=None, warnings=["rollback heal all failed: timeout"],
             aborts=[{"at": j["load_start"] + 47.3, "offset_s": 47.3, "reason": reason, "condition": {}}])
    del j["steady_state"]["after"], j["steady_state"]["whole"]
    j["steady_state"]["during"].update(results=[], error="PrometheusUnavailable: connection refused")
    j["faults"] = j["faults"][:2]
    j["faults"][1].update(ok=False, output=None, started=None, ended=None,
                          error="no replica of Work found | exit 1")
    j["rollbacks"] = [{"id": "r3", "action": "restart-node", "node": "w1", "at_s": None, "launched": j["end"] - 5,
                       "started": j["end"] - 4.5, "ended": j["end"] - 1.0, "took_s": 4.2, "ok": True,
                       "output": {"target": {"node": "w1", "pid": 4242}}, "error": None}]
    j["client_summary"].update(complete=False, cancelled=12)
    _result(j, "before", "availability").update(verdict="error", value=None, unit="", op="", ok=None, detail=(
        "Prometheus at http://p:9090: rejected the query (bad_data: invalid parameter) for query 'sum(increase(x[18s]))'"))
    return j


def test_passed_report_has_the_real_figures(journal):
    text = render(journal)
    assert text.startswith("# replica_kills: PASSED\n\nEvery judged SLO held (during, after, whole)")
    assert ("embedded:default (2 workers) · backend serve_core · seed 7 · started 2026-11-22 04:56:39 UTC · "
            "run 118.4 s, load 90.0 s") in text
    assert "- Profile: constant: rate 150, duration_s 90; through http://10.77.0.3:8000, http://10.77.0.4:8000" in text
    assert "- Rate: intended 150.0/s, achieved 150.0/s" in text
    assert "- Requests: 13500 scheduled, 13500 sent, 13500 ok, 0 failed\n" in text
    assert "0 retried on the next proxy after a refused connection, 2 late, 0 missed, 0 not started" in text
    assert "p50 10.0 ms, p90 17.4 ms, p99 42.9 ms, max 723.5 ms" in text
    assert "Client-side uptime: **100%** (13500 of 13500 requests ok)." in text
    assert "| before | 0–18 | p99 | ≤ 200 ms | 13.4 ms | - | met |" in text
    assert "| during | 20–70 | availability | ≥ 99.9% | 100% | - | met |" in text
    assert "| during | 20–70 | p99 | ≤ 200 ms | 31.8 ms | - | met |" in text
    assert "| whole | 0–90 | recovery | ≤ 20 s | 0.0 s | - | met |" in text
    rows = [line for line in text.splitlines() if line.startswith("| f")]
    assert rows == [
        "| f0 | 25 | 30.62 | kill-replica | w1, replica b99d87ca, pid 15265 | 0.08 | 6.69 | ok | 0 s (no visible impact) |",
        "| f1 | 40 | 45.23 | kill-replica | w2, replica e45d0913, pid 17800 | 0.05 | 6.08 | ok | 0 s (no visible impact) |",
        "| f2 | 55 | 62.04 | kill-replica | w2, replica 9cda56c6, pid 14941 | 0.05 | 8.29 | ok | 0 s (no visible impact) |",
    ]
    assert "Recovery SLO: within 20 s (error ratio over 10s <= 0.01 counts as recovered): worst 0.0 s, met." in text
    assert "- Availability: client 100%, Prometheus 100%: 0.000 pp apart, within tolerance (0.1 pp)." in text
    assert ("- p99: client 43.1 ms, Prometheus 27.2 ms: 1 bucket(s) apart (30–50 ms vs 20–30 ms), client +58.4%, "
            "within tolerance (1 bucket).") in text
    assert "the client sent 13494 in the run's window, Prometheus counted 13500: 6 more on the server" in text
    assert "- Never seen by the server: none: every request got an HTTP answer." in text
    assert text.rstrip().endswith("## Aborts, rollbacks and warnings\n\nNone.")


def test_passed_summary(journal):
    s = summarize(journal)
    assert (s["verdict"], s["sent"], s["ok"], s["failed"], s["failed_by_cause"]) == ("passed", 13500, 13500, 0, {})
    assert s["availability_client"] == 1.0 and s["availability_prometheus"] == 1.0
    assert s["p99_client_ms"] == pytest.approx(42.912, abs=1e-3)
    assert s["p99_prometheus_ms"] == pytest.approx(27.184, abs=1e-3)
    assert s["crosscheck_ok"] is True and s["recovery_max_s"] == 0.0
    assert [(f["id"], f["planned_s"], f["at_s"], f["ok"], f["recovery_s"]) for f in s["faults"]] == [
        ("f0", 25.0, 30.621, True, 0.0), ("f1", 40.0, 45.231, True, 0.0), ("f2", 55.0, 62.044, True, 0.0)]
    assert s["slos"]["during"]["p99"]["value"] == pytest.approx(31.837, abs=1e-3)
    assert (s["target"], s["backend"], s["seed"], s["duration_s"]) == ("embedded:default", "serve_core", 7, 118.416)
    json.dumps(s)  # plain JSON


def test_failed_report(failed):
    text = render(failed)
    assert text.startswith("# replica_kills: FAILED\n\n- during: availability = 0.9985 (")
    assert "- whole: recovery = 27.577 (not recovered)" in text
    assert "- Requests: 13500 scheduled, 13500 sent, 13480 ok, 20 failed (503: 5, refused: 15)" in text
    assert "7 retried on the next proxy" in text
    assert "Client-side uptime: **99.8518%** (13480 of 13500 requests ok)." in text
    assert "| during | 20–70 | availability | ≥ 99.9% | 99.8500% | - | **violated** |" in text
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[-1].rstrip(" |") for line in text.splitlines()
            if line.startswith("| f")}
    assert rows == {"f0": "5 s (errors from +1 s)", "f1": "0 s (no visible impact)",
                    "f2": "not recovered (≥ 27.577 s)"}
    assert "worst 27.6 s, violated." in text
    assert "-0.111 pp apart, **outside tolerance** (0.1 pp)." in text
    assert "Prometheus counted 13485: 15 the server never counted." in text
    assert ("- Never seen by the server: 15 request(s) got no HTTP answer (refused: 15); server-side metrics "
            "cannot count them.") in text


def test_failed_summary(failed):
    s = summarize(failed)
    assert (s["verdict"], s["failed"], s["failed_by_cause"]) == ("failed", 20, {"503": 5, "refused": 15})
    assert s["availability_client"] == pytest.approx(0.998519, abs=1e-6)
    assert s["availability_prometheus"] == pytest.approx(13480 / 13485)
    assert [f["recovery_s"] for f in s["faults"]] == [5.0, 0.0, None]
    assert s["recovery_max_s"] == pytest.approx(27.577, abs=1e-3) and s["crosscheck_ok"] is False
    assert s["slos"]["during"]["availability"] == {"value": 0.9985, "verdict": "violated"}


def test_aborted_report(aborted):
    text = render(aborted)
    assert text.startswith("# replica_kills: ABORTED\n\n- error budget burn rate 20.0 > 14.4 over the last 30s")
    assert "(INCOMPLETE: the load was stopped or a worker was lost)" in text and "12 cancelled by the stop" in text
    assert "| during | 20–70 | - | - | - | - | could not probe: PrometheusUnavailable: connection refused |" in text
    assert "| after | - | - | - | - | - | not probed (the run ended first) |" in text
    assert ("| before | 0–18 | availability | ≥ 99.9% | - | - | **error**: Prometheus at http://p:9090: rejected the "
            "query (bad_data: invalid parameter) for query… |") in text
    assert "| whole | - | - | - | - | - | not probed (the run ended first) |" in text
    assert "| f1 | 40 | 40.01 | kill-replica | deployment Work | - | 6.08 | **error**: no replica of Work found \\| exit 1 | - |" in text
    assert "| f2 |" not in text and "Recovery SLO" not in text
    assert "No cross-check was made (see the warnings)." in text
    assert "- **Abort** at 47.3 s: error budget burn rate 20.0 > 14.4" in text
    assert "- Warning: rollback heal all failed: timeout" in text
    assert "| r3 | - | 99.40 | restart-node | w1, pid 4242 | 3.50 | 4.20 | ok | - |" in text
    s = summarize(aborted)
    assert s["verdict"] == "aborted" and s["aborts"] == [aborted["reasons"][0]]
    assert s["availability_prometheus"] is None and s["p99_prometheus_ms"] is None and s["crosscheck_ok"] is None
    assert [(f["id"], f["ok"], f["recovery_s"]) for f in s["faults"]] == [("f0", True, None), ("f1", False, None)]
    assert recoveries(aborted) == {}


def test_percentages_show_one_request_and_never_round_up():
    assert pct(1.0) == "100%" and pct(None) == "-"
    assert pct(0.99985) == "99.985%"
    assert pct(0.9999999, 4) == "99.9999%"  # not 100.0000%
    assert pct(13499 / 13500, 4) == "99.9925%"


def test_write_report_uses_the_client_records_beside_it(journal, tmp_path):
    t0 = journal["load_start"]
    (tmp_path / "load").mkdir()
    with open(tmp_path / "load" / "records.jsonl", "w") as f:  # 100 requests in the during window, one 503
        for i in range(100):
            f.write(json.dumps({"intended": t0 + 20 + i * 0.4, "route": "/", "status": 503 if i == 50 else 200,
                                "error": None, "latency_s": (i + 1) / 1000}) + "\n")
    path = write_report(journal, str(tmp_path))
    assert path == str(tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "| during | 20–70 | availability | ≥ 99.9% | 100% | 99.0000% | met |" in text
    assert "| during | 20–70 | p99 | ≤ 200 ms | 31.8 ms | 99.0 ms | met |" in text
    assert "| after | 70–90 | availability | ≥ 99.9% | 100% | - | met |" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verdict"] == "passed" and summary["sent"] == 13500
    assert write_report(journal, str(tmp_path / "other.md")) == str(tmp_path / "other.md")


def test_listener_writes_the_report_when_the_run_finishes(tmp_path):
    listener = ReportListener()
    t0 = 1000.0
    target = {"kind": "embedded", "name": "lab", "workers": 2}
    listener(RunStarted(990.0, "demo", {"steady_state": {"judge": ["during"]}}, 3, target, "ray_serve", str(tmp_path)))
    listener(LoadStarted(t0, ["http://a:8000"]))
    listener(FaultStarted(t0 + 30, "f0", "method", {"action": "kill-node", "node": "w1", "at_s": 30.0}, 30.0))
    assert listener.report_path is None and not (tmp_path / "report.md").exists()
    listener(FaultFinished(t0 + 31, "f0", "method", True, t0 + 30.5, t0 + 30.7,
                           {"target": {"node": "w1", "pid": 77}}, None, 1.0))
    listener(ProbeResult(t0 + 70, "during", t0 + 20, t0 + 60, [
        {"name": "availability", "kind": "availability", "verdict": "violated", "value": 0.95, "threshold": 0.999,
         "op": ">=", "unit": "ratio", "query": "q", "detail": "", "ok": False}]))
    listener(RunFinished(t0 + 80, "failed", ["during: availability = 0.95"], {"sent": 100, "ok": 95, "failed": 5},
                         None))
    assert listener.report_path == str(tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# demo: FAILED\n\n- during: availability = 0.95\n")
    assert "| f0 | 30 | 30.50 | kill-node | w1, pid 77 | 0.20 | 1.00 | ok | - |" in text
    assert "| during | 20–60 | availability | ≥ 99.9% | 95.000% | - | **violated** |" in text
    assert "Client-side uptime: **95.000%** (95 of 100 requests ok)." in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["verdict"], summary["backend"], summary["availability_client"]) == ("failed", "ray_serve", 0.95)
    assert not (tmp_path / "journal.json").exists()  # the Journal listener writes that, not the report


def test_cli_report_rewrites_and_prints(journal, tmp_path, capsys):
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("# replica_kills: PASSED\n") and out.out == (tmp_path / "report.md").read_text()
    assert f"wrote {tmp_path / 'report.md'} and {tmp_path / 'summary.json'}" in out.err
    assert main(["report", str(tmp_path / "journal.json")]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["verdict"] == "passed"


def test_cli_report_without_a_journal_exits_3(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 3
    assert f"error: no journal at {tmp_path / 'journal.json'}: give a run directory" in capsys.readouterr().err
    (tmp_path / "journal.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 3
    assert "not a readable journal" in capsys.readouterr().err


def test_cli_run_attaches_the_report_listener(monkeypatch, tmp_path, capsys):
    def fake_run(exp, listeners, options):
        reports = [x for x in listeners if isinstance(x, ReportListener)]
        assert len(reports) == 1
        for listener in listeners:
            listener(RunStarted(1.0, exp.name, {}, exp.seed, {"kind": "embedded", "name": "default"}, exp.backend,
                                str(tmp_path)))
            listener(RunFinished(2.0, "passed", [], None, None))
        return RunResult("passed", [], str(tmp_path), str(tmp_path / "journal.json"))

    monkeypatch.setattr(chaos.runner, "run_experiment", fake_run)
    assert main(["run", REPLICA_KILLS, "--quiet"]) == 0
    assert capsys.readouterr().out.endswith(f"verdict: PASSED\nreport: {tmp_path / 'report.md'}\n")
    assert (tmp_path / "summary.json").exists()
