"""The uptime report: report.md and summary.json from a real journal (trimmed, in data/), and
from failed and aborted variants of it; the listener; ``python -m chaos report``."""

import copy
import dataclasses
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

import chaos.run.runner
from chaos.cli import main
from chaos.report.run_report import ReportListener, pct, recoveries, render, render_html, summarize, write_report
from chaos.run.journal import (
    FaultFinished,
    FaultStarted,
    LoadStarted,
    ProbeResult,
    RunFinished,
    RunStarted,
    SeriesCollected,
)
from chaos.run.options import RunResult
from chaos.slo.alert_timeline import alert_conditions
from chaos.slo.alerts import alert_rules
from chaos.slo.crosscheck import ClientRecord
from chaos.slo.evaluate import judge_recovery
from chaos.slo.spec import Availability, Latency, Recovery
from chaos.slo.timeseries import plot_queries

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
    # the recovery SLO's detail as chaos.slo.evaluate writes it: errors 1 s after f0 until 5 s, none after f1,
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
    assert "| before | 0–18 | p99 | ≤ 200 ms | 13.4 ms | - | - | met |" in text  # the gate before the faults
    assert "| during | 20–70 | availability | ≥ 99.9% | 100% | - | 0% | met |" in text
    assert "| during | 20–70 | p99 | ≤ 200 ms | 31.8 ms | - | - | met |" in text
    assert "| whole | 0–90 | recovery | ≤ 20 s | 0.0 s | - | - | met |" in text
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


def test_a_window_the_experiment_does_not_judge_never_reads_violated(journal):
    """Issue 16: the warm-up window's p99 read **violated** above a PASSED verdict."""
    j = copy.deepcopy(journal)
    j["experiment"]["steady_state"]["require_before"] = False  # the before window only informs
    _result(j, "before", "latency").update(value=950.0, verdict="violated", ok=False)
    text = render(j)
    assert text.startswith("# replica_kills: PASSED")
    before = [line for line in text.splitlines() if line.startswith("| before |")]
    assert before and not any("violated**" in line for line in before)
    assert "| before | 0–18 | p99 | ≤ 200 ms | 950.0 ms | - | - | not judged (would be violated; " in text
    html = render_html(j)
    assert "not judged (would be violated; the experiment judges during, after, whole)" in html


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
    assert "| during | 20–70 | availability | ≥ 99.9% | 99.8500% | - | 150.0% | **violated** |" in text
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
    assert "| during | 20–70 | - | - | - | - | - | could not probe: PrometheusUnavailable: connection refused |" in text
    assert "| after | - | - | - | - | - | - | not probed (the run ended first) |" in text
    assert ("| before | 0–18 | availability | ≥ 99.9% | - | - | - | **error**: Prometheus at http://p:9090: rejected the "
            "query (bad_data: invalid parameter) for query… |") in text
    assert "| whole | - | - | - | - | - | - | not probed (the run ended first) |" in text
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
    assert "| during | 20–70 | availability | ≥ 99.9% | 100% | 99.0000% | 0% | met |" in text
    assert "| during | 20–70 | p99 | ≤ 200 ms | 31.8 ms | 99.0 ms | - | met |" in text
    assert "| after | 70–90 | availability | ≥ 99.9% | 100% | - | 0% | met |" in text
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
    assert "| during | 20–60 | availability | ≥ 99.9% | 95.000% | - | 5000.0% | **violated** |" in text
    assert "Client-side uptime: **95.000%** (95 of 100 requests ok)." in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["verdict"], summary["backend"], summary["availability_client"]) == ("failed", "ray_serve", 0.95)
    assert not (tmp_path / "journal.json").exists()  # the Journal listener writes that, not the report


def test_cli_report_rewrites_and_prints(journal, tmp_path, capsys):
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("# replica_kills: PASSED\n") and out.out == (tmp_path / "report.md").read_text()
    assert f"wrote {tmp_path / 'report.md'}, {tmp_path / 'report.html'} and {tmp_path / 'summary.json'}" in out.err
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

    monkeypatch.setattr(chaos.run.runner, "run_experiment", fake_run)
    assert main(["run", REPLICA_KILLS, "--quiet"]) == 0
    assert capsys.readouterr().out.endswith(f"verdict: PASSED\nreport: {tmp_path / 'report.md'}\nhtml:   {tmp_path / 'report.html'}\n")
    assert (tmp_path / "summary.json").exists() and (tmp_path / "report.html").exists()


# -- report.html and the alerts ----------------------------------------------------------------


def _points(t0, f, seconds=90):
    return [[t0 + k, f(k)] for k in range(seconds + 1)]


def _series(j):
    """Prometheus series over the fixture's run as the runner journals them: 150 requests/s, errors
    and slow answers from 31 to 35 s, one replica of Work fewer from 31 to 38 s; the fast burn
    condition held from 31.5 to 36 s on its 1.5 s grid."""
    t0 = j["load_start"]
    bad = lambda k: 31 <= k <= 35  # noqa: E731
    values = {"requests": lambda k: 150.0, "errors": lambda k: 3.0 if bad(k) else 0.0,
              "p50": lambda k: 10.0, "p90": lambda k: 17.0, "p99": lambda k: 300.0 if bad(k) else (None if k < 2 else 30.0)}
    plots = {name: {"query": q, "error": None, "series": [{"labels": {}, "points": _points(t0, values[name])}]}
             for name, q in plot_queries("serve_core").items() if name != "replicas"}
    plots["replicas"] = {"query": plot_queries("serve_core")["replicas"], "error": None, "series": [
        {"labels": {"application": "default", "deployment": "Work"},
         "points": _points(t0, lambda k: 1.0 if 31 <= k <= 38 else 2.0)},
        {"labels": {"application": "default", "deployment": "Ingress"}, "points": _points(t0, lambda k: 1.0)}]}
    rules = alert_rules([Availability(objective=0.999), Latency(name="p99", percentile=99, threshold_ms=200)],
                        "serve_core", scale=0.1)
    conditions = {}
    for c in alert_conditions(rules):
        held = c.alert == "SLOErrorBudgetBurn" and c.labels["window"] == "fast"
        conditions[c.key] = {"query": c.query, "error": None, "series": [
            {"labels": {"slo": "availability", "backend": "serve_core"},
             "points": [[t0 + k * 1.5, 0.2] for k in range(61) if 31.5 <= k * 1.5 <= 36]}] if held else []}
    return SeriesCollected(j["end"] - 1, t0, t0 + 90, 1.0, 5.0, plots,
                           {"rules": rules, "scale": 0.1, "start": t0, "end": t0 + 90, "conditions": conditions})


def _with_series(j):
    j = copy.deepcopy(j)
    e = _series(j)
    j["series"] = {"start": e.start, "end": e.end, "step_s": e.step_s, "window_s": e.window_s, "plots": e.series}
    j["alerts"] = e.alerts
    return j


def _records(j):
    t0 = j["load_start"]
    return [ClientRecord(t0 + i / 150, "/", 503 if 31 <= i / 150 < 33 and i % 50 == 0 else 200, None,
                         0.3 if 31 <= i / 150 < 35 else 0.01) for i in range(150 * 90)]


def _svgs(html):
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", html, re.S)]


def test_html_report_has_the_verdict_tables_then_a_plot_per_view_with_every_fault(journal):
    j = _with_series(journal)
    html = render_html(j, _records(j))
    assert html.startswith("<!DOCTYPE html>")
    order = [html.index(x) for x in ('<span class="verdict PASSED">PASSED</span>', "<h2>Steady state</h2>",
                                     "<h2>Faults</h2>", "<h2>Alerts that would have fired</h2>", "<h2>Over time</h2>")]
    assert order == sorted(order)
    assert ("<tr><td>during</td><td>20–70</td><td>availability</td><td>≥ 99.9%</td><td>100%</td><td>99.9200%</td>"
            '<td>0%</td><td class="pass">pass</td></tr>') in html
    assert '<td>f1</td><td>40</td><td>45.23</td><td>kill-replica</td>' in html
    assert '<td class="pass">0 s (no visible impact)</td>' in html
    assert ("<td>SLOErrorBudgetBurn</td><td>page</td><td>slo=availability, window=fast</td><td>31.5</td>"
            '<td class="fail">31.5</td><td>37.5</td>') in html
    svgs = _svgs(html)
    assert [s.findtext("title") for s in svgs] == [
        "Requests and errors per second", "Latency percentiles (ms, log scale)", "Replicas per deployment (Prometheus)"]
    # client and server lines: sent and errors; p50, p90, p99; one per deployment
    assert [len(s.findall(".//path[@class='series']")) for s in svgs] == [4, 6, 2]
    for s in svgs:
        faults = s.findall(".//g[@class='fault']")
        assert [f.findtext("text") for f in faults] == ["f0 kill-replica", "f1 kill-replica", "f2 kill-replica"]
        assert "w1, replica b99d87ca, pid 15265 at 30.62 s; recovery 0 s (no visible impact)" in faults[0].findtext("title")
    assert "Part missing" not in html and "Plot missing" not in html
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r"""(?:src|href)\s*=|url\(|<script|<link|@import""", html)


def test_html_report_says_which_plot_is_missing_and_why(journal):
    html = render_html(journal)  # no series in the journal, no client records
    assert html.count("<svg") == 0
    assert html.count('<p class="missing">Plot missing: client: no records (load/records.jsonl is not beside the '
                      "journal); server requests, errors: the journal has no Prometheus series") == 1
    assert "Plot missing: server replicas: the journal has no Prometheus series" in html
    j = _with_series(journal)
    j["series"]["plots"]["replicas"] = {"query": "q", "series": [], "error": "PrometheusUnavailable: down"}
    j["series"]["plots"]["p99"]["error"] = "PrometheusQueryError: rejected"
    html = render_html(j, _records(j))
    assert html.count("<svg") == 2 and "Plot missing: server replicas: PrometheusUnavailable: down" in html
    assert "Part missing: server p99: PrometheusQueryError: rejected" in html
    assert [len(s.findall(".//path[@class='series']")) for s in _svgs(html)] == [4, 5]
    j["backend"] = "loadgen"
    assert "Plot missing: backend loadgen has no replica gauge" in render_html(j, _records(j))


def test_html_report_of_a_failed_and_an_aborted_run(failed, aborted):
    html = render_html(failed)
    assert '<span class="verdict FAILED">FAILED</span>' in html and "<li>whole: recovery = 27.577 (not recovered)</li>" in html
    assert '<td>99.8500%</td><td>-</td><td>150.0%</td><td class="fail">fail</td>' in html
    assert '<td class="fail">not recovered (≥ 27.577 s)</td>' in html and '<td class="pass">5 s (errors from +1 s)</td>' in html
    html = render_html(aborted)
    assert '<td class="fail">error: no replica of Work found | exit 1</td>' in html
    assert '<td class="unknown">could not probe: PrometheusUnavailable: connection refused</td>' in html
    assert "<li>Abort at 47.3 s: error budget burn rate 20.0 &gt; 14.4" in html


def test_alerts_section_in_markdown_and_summary(journal):
    j = _with_series(journal)
    text = render(j)
    section = text.split("## Alerts that would have fired\n\n")[1].split("\n\n## ")[0]
    assert section.splitlines() == [
        "3 alert rule(s) of chaos.slo.alerts, windows scaled by 0.1, evaluated every 1.5 s over 90 s of the run.",
        "",
        "| alert | severity | labels | fired at (s) | resolved at (s) |",
        "|---|---|---|---|---|",
        "| SLOErrorBudgetBurn | page | slo=availability, window=fast | 31.5 | 37.5 |",
    ]
    assert summarize(j)["alerts"] == [{"alert": "SLOErrorBudgetBurn", "severity": "page",
                                       "labels": "slo=availability, window=fast", "fired_s": 31.5, "resolved_s": 37.5}]
    # with for: 3s the 4.5 s it held still fires, 3 s after it began; held from 84 s to the end, it is still firing
    rule = next(r for r in j["alerts"]["rules"]["groups"][0]["rules"] if r.get("labels", {}).get("window") == "fast")
    rule["for"] = "3s"
    key = next(k for k in j["alerts"]["conditions"] if "fast" in k)
    j["alerts"]["conditions"][key]["series"][0]["points"] += [[j["load_start"] + 84 + k * 1.5, 0.3] for k in range(5)]
    text = render(j)
    assert "| SLOErrorBudgetBurn | page | slo=availability, window=fast | 34.5 (pending from 31.5) | 37.5 |" in text
    assert "| 87 (pending from 84) | still firing at the end (90 s) |" in text
    # none fired, not evaluated, no rules
    for c in j["alerts"]["conditions"].values():
        c["series"] = []
    assert "None: no alert's condition held long enough to fire (3 alert rule(s)" in render(j)
    assert summarize(j)["alerts"] == []
    assert "Not evaluated: the journal has no alert data" in render(journal) and summarize(journal)["alerts"] is None
    j["alerts"] = {"rules": {"groups": [{"name": "slo", "interval": "15s", "rules": []}]}, "start": 0, "end": 1,
                   "conditions": {}}
    assert "No alert rules: the SLOs have no availability, latency or PromQL objective." in render(j)


def test_write_report_writes_the_html_beside_the_markdown(journal, tmp_path):
    j = _with_series(journal)
    (tmp_path / "load").mkdir()
    with open(tmp_path / "load" / "records.jsonl", "w") as f:
        for r in _records(j):
            f.write(json.dumps({"intended": r.intended, "route": r.route, "status": r.status, "error": r.error,
                                "latency_s": r.latency_s}) + "\n")
    write_report(j, str(tmp_path))
    html = (tmp_path / "report.html").read_text()
    assert len(_svgs(html)) == 3 and "client sent/s" in html
    assert write_report(j, str(tmp_path / "other.md")) == str(tmp_path / "other.md")
    assert (tmp_path / "other.html").exists()
