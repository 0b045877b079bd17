"""The runner's logic with a fake target, fake load, fake SLO probe and a fake clock: faults
at the planned times (each in its own thread), aborts that stop the run and still roll
back, the verdict, and the journal's content."""

import json
import os
import threading

import pytest

from chaos.report.run_report import write_report
from chaos.run.journal import Event, SeriesCollected, load_journal
from chaos.run.load_driver import LoadProgress, normalize_progress
from chaos.run.options import RunOptions
from chaos.run.runner import Runner
from chaos.run.steady_state import slo_result_dict
from chaos.run.verdict import ABORTED, FAILED, PASSED, decide_verdict
from chaos.slo.alert_timeline import alert_conditions
from chaos.slo.prometheus import PrometheusQueryError, PrometheusUnavailable, Series
from chaos.spec.loading import parse_experiment
from chaos.spec.schedule import DeploymentInfo, NodeInfo, Snapshot
from chaos.targets.base import FaultOutcome, TargetError

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, t=T0):
        self.t = t
        self.sleeps = []
        self.on_sleep = None  # called with the time after each sleep

    def time(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s
        if self.on_sleep:
            self.on_sleep(self.t)


class Done:
    def join(self, timeout=None):
        pass

    def is_alive(self):
        return False


def inline(fn, name):
    fn()
    return Done()


class FakeTarget:
    description = "fake"

    def __init__(self, clock, fail=(), check_error=None, deploy_error=None):
        self.clock = clock
        self.fail = set(fail)
        self.check_error, self.deploy_error = check_error, deploy_error
        self.injected = []  # (time, PlannedFault)
        self.deployed = []
        self.interrupted = 0
        self.load_t0 = None
        self.snap = Snapshot((NodeInfo("head", "head"), NodeInfo("w1", "worker"), NodeInfo("w2", "worker")),
                             (DeploymentInfo("default", "Work", ("w1", "w2")),))

    def check(self):
        if self.check_error:
            raise self.check_error
        return self.snap

    def snapshot(self):
        return self.snap

    def deploy(self, app, backend):
        if self.deploy_error:
            raise self.deploy_error
        self.deployed.append((app.import_path_for(backend), backend))
        return {"argv": ["deploy"], "output": "ok"}

    def wait_ready(self, urls, route, timeout_s):
        self.ready = (urls, route)

    def proxy_urls(self, backend, which):
        return ["http://10.77.0.3:8000", "http://10.77.0.4:8000"]

    def prometheus_url(self):
        return "http://prom:9391"

    def inject(self, fault):
        now = self.clock.time()
        self.injected.append((now, fault))
        if fault.action in self.fail:
            return FaultOutcome(False, error=f"{fault.action} failed on purpose", argv=["x"])
        out = {"fault": fault.action, "target": fault.target, "started": now, "ended": now + fault.expected_s,
               "detail": {}}
        return FaultOutcome(True, out, now, now + fault.expected_s, argv=["x"])

    def interrupt(self):
        self.interrupted += 1


class FakeLoad:
    def __init__(self, request, clock, failures=lambda off: 0):
        self.request, self.clock, self.failures = request, clock, failures
        self.started_at = None
        self.stopped = False
        self.waited = False

    def start(self):
        self.started_at = self.clock.time()

    def progress(self):
        off = self.clock.time() - self.started_at
        failed = self.failures(off)
        return LoadProgress(sent=int(off * 100), ok=int(off * 100) - failed, failed=failed)

    def stop(self):
        self.stopped = True

    def wait(self):
        self.waited = True
        return {"sent": 9000, "ok": 9000, "failed": 0}

    @property
    def records_path(self):
        return os.path.join(self.request.out_dir, "records.jsonl")


class FakeProbe:
    """SLO results from ``verdicts(window_start, window_end) -> {slo name: ok}``; burn rate
    from ``burn(offset)``."""

    def __init__(self, clock, verdicts=None, burn=lambda off: 0.5, evaluate_error=None):
        self.clock = clock
        self.verdicts = verdicts or (lambda start, end: {})
        self.burn = burn
        self.evaluate_error = evaluate_error
        self.evaluated = []  # (slo names, start, end, fault_times, evaluated at)
        self.burn_calls = []
        self.t0 = None

    def evaluate(self, slos, start, end, fault_times, fault_ends=()):
        self.evaluated.append(([s.name for s in slos], start, end, list(fault_times), self.clock.time()))
        if self.evaluate_error:
            raise self.evaluate_error
        oks = self.verdicts(start, end)
        return [{"name": s.name, "kind": s.kind, "value": 1.0, "ok": oks.get(s.name, True), "query": "q",
                 "detail": "fake"} for s in slos]

    def burn_rate(self, objective, at, window_s, route):
        self.burn_calls.append((objective, at, window_s))
        return self.burn(at - T0)

    def crosscheck(self, start, end, records_path):
        return {"ok": True, "summary": "agrees", "records": os.path.basename(records_path or "")}


class FakePrometheus:
    """Range queries answered by ``answer(query, start, end, step) -> [Series]`` (no data by
    default), or ``fail(query) -> exception to raise`` (None: answer)."""

    def __init__(self):
        self.url = None
        self.answer = lambda q, start, end, step: []
        self.fail = lambda q: None
        self.calls = []  # (query, start, end, step)

    def query(self, q, at=None):
        raise AssertionError("the runner reads series with range queries only")

    def query_range(self, q, start, end, step):
        self.calls.append((q, start, end, step))
        error = self.fail(q)
        if error is not None:
            raise error
        return self.answer(q, start, end, step)


def experiment(method=None, abort=(), rollbacks=(), require_before=True, judge=None):
    doc = {
        "name": "fake", "seed": 3,
        "application": {"import_path": "tests.e2e.fault_app:app"},
        "load": {"profile": {"kind": "constant", "rate": 100, "duration_s": 90}},
        "steady_state": {"before_s": 20, "during_s": 50, "after_s": 20, "settle_s": 5, "require_before": require_before,
                         "slos": [{"kind": "availability", "objective": 0.999},
                                  {"kind": "latency", "name": "p99", "percentile": 99, "threshold_ms": 100},
                                  {"kind": "recovery", "max_s": 10}]},
        "method": method if method is not None else [
            {"action": "kill-replica", "target": {"deployment": "Work"}, "schedule": {"every_s": 15, "start_s": 25,
                                                                                      "end_s": 55}},
            {"action": "kill-gcs", "args": {"down_for_s": 10}, "schedule": {"at_s": 30}},
        ],
        "abort": list(abort),
        "rollbacks": list(rollbacks),
    }
    if judge:
        doc["steady_state"]["judge"] = judge
    return parse_experiment(doc)


class Harness:
    def __init__(self, tmp_path, exp=None, failures=lambda off: 0, spawn=inline, **target_kw):
        self.clock = FakeClock()
        self.exp = exp or experiment()
        self.target = FakeTarget(self.clock, **target_kw)
        self.loads = []
        self.probe = FakeProbe(self.clock)
        self.prom = FakePrometheus()
        self.events = []
        self.failures = failures

        def make_load(request):
            load = FakeLoad(request, self.clock, self.failures)
            self.loads.append(load)
            return load

        def make_prometheus(url):
            self.prom.url = url
            return self.prom

        self.runner = Runner(self.exp, self.target, load_factory=make_load, probe_factory=lambda url, b: self.probe,
                             listeners=[self.events.append], clock=self.clock, spawn=spawn,
                             options=RunOptions(out_root=str(tmp_path / "reports")), prometheus_factory=make_prometheus)

    def run(self):
        self.result = self.runner.run()
        self.journal = load_journal(self.result.journal_path)
        return self.result

    @property
    def t0(self):
        return self.loads[0].started_at

    def offsets(self):
        return [(round(t - self.t0, 6), f.action) for t, f in self.target.injected if f.phase == "method"]

    def kinds(self):
        return [e.kind for e in self.events]


# -- the happy path ----------------------------------------------------------------------------


def test_faults_run_at_their_planned_times_and_the_run_passes(tmp_path):
    h = Harness(tmp_path, exp=experiment(rollbacks=[{"action": "restart-node", "target": "all"}]))
    result = h.run()
    assert result.verdict == PASSED and result.reasons == []
    assert h.offsets() == [(25, "kill-replica"), (30, "kill-gcs"), (40, "kill-replica"), (55, "kill-replica")]
    assert h.target.deployed == [("tests.e2e.fault_app:app", "serve_core")]
    load = h.loads[0]
    assert load.request.targets == ["http://10.77.0.3:8000", "http://10.77.0.4:8000"]
    assert load.request.route == "/" and load.request.out_dir == os.path.join(result.run_dir, "load")
    assert load.waited and not load.stopped  # the profile ends by itself at the end of the run
    assert h.target.interrupted == 0


def test_events_in_order(tmp_path):
    h = Harness(tmp_path)
    h.run()
    kinds = [k for k in h.kinds() if k not in ("progress", "note")]
    assert kinds[:4] == ["run_started", "schedule_planned", "load_started", "probe_result"]
    assert kinds[-5:] == ["probe_result", "probe_result", "probe_result", "series_collected", "run_finished"]
    assert kinds.count("fault_started") == kinds.count("fault_finished") == 4
    assert any(k == "progress" for k in h.kinds())


def test_steady_state_windows_and_fault_times(tmp_path):
    h = Harness(tmp_path)
    h.run()
    t0 = h.t0
    by_window = {e.window: e for e in h.events if e.kind == "probe_result"}
    assert (by_window["before"].start, by_window["before"].end) == (t0, t0 + 18)  # minus the scrape lag
    assert (by_window["during"].start, by_window["during"].end) == (t0 + 20, t0 + 70)
    assert (by_window["after"].start, by_window["after"].end) == (t0 + 70, t0 + 90)
    assert (by_window["whole"].start, by_window["whole"].end) == (t0, t0 + 90)
    calls = {(c[1] - t0, c[2] - t0): c for c in h.probe.evaluated}
    before, during, after, whole = calls[(0, 18)], calls[(20, 70)], calls[(70, 90)], calls[(0, 90)]
    assert before[0] == ["availability", "p99"] and after[0] == ["availability", "p99"]  # no recovery there
    assert during[0] == ["availability", "p99", "recovery"]
    assert [t - t0 for t in during[3]] == [25, 30, 40, 55] == [t - t0 for t in whole[3]]
    assert before[4] == t0 + 20  # probed as soon as the before window ends
    assert during[4] >= t0 + 90 + 5  # judged after the settle time


def test_journal_content(tmp_path):
    h = Harness(tmp_path, exp=experiment(rollbacks=[{"action": "heal", "target": "worker"}]))
    result = h.run()
    j = h.journal
    assert result.run_dir.startswith(str(tmp_path / "reports" / "fake-2023"))
    assert result.journal_path == os.path.join(result.run_dir, "journal.json")
    assert j["name"] == "fake" and j["seed"] == 3 and j["backend"] == "serve_core"
    assert j["target"]["kind"] == "embedded" and j["experiment"]["method"][1]["action"] == "kill-gcs"
    assert j["start"] == T0 and j["load_start"] == h.t0 and j["end"] >= h.t0 + 90
    assert [f["action"] for f in j["plan"]] == ["kill-replica", "kill-gcs", "kill-replica", "kill-replica"]
    faults = j["faults"]
    assert [f["action"] for f in faults] == ["kill-replica", "kill-gcs", "kill-replica", "kill-replica"]
    gcs = faults[1]
    assert gcs["ok"] is True and gcs["offset_s"] == 30 and gcs["started"] == h.t0 + 30
    assert gcs["ended"] == h.t0 + 40 and gcs["output"]["fault"] == "kill-gcs" and gcs["args"] == {"down_for_s": 10}
    assert [(r["action"], r["node"], r["ok"]) for r in j["rollbacks"]] == [("heal", "w1", True), ("heal", "w2", True)]
    assert set(j["steady_state"]) == {"before", "during", "after", "whole"}
    assert j["steady_state"]["during"]["results"][0]["name"] == "availability"
    assert j["client_summary"] == {"sent": 9000, "ok": 9000, "failed": 0}
    assert j["crosscheck"]["records"] == "records.jsonl"
    assert j["verdict"] == "passed" and j["reasons"] == [] and j["aborts"] == []
    assert not [n for n in os.listdir(result.run_dir) if n.endswith(".tmp")]  # written atomically


# -- aborts ------------------------------------------------------------------------------------


def test_burn_rate_abort_stops_the_run_and_still_rolls_back(tmp_path):
    exp = experiment(abort=[{"kind": "burn_rate", "above": 14.4, "window_s": 30}],
                     rollbacks=[{"action": "heal", "target": "all"}, {"action": "restart-node", "target": "all",
                                                                        "only_if_down": False}])
    h = Harness(tmp_path, exp=exp)
    h.probe.burn = lambda off: 20.0 if off >= 42 else 1.0
    result = h.run()
    assert result.verdict == ABORTED
    assert "burn rate 20.0 > 14.4 over the last 30s" in result.reasons[0]
    assert h.offsets() == [(25, "kill-replica"), (30, "kill-gcs"), (40, "kill-replica")]  # 55 never came
    assert h.loads[0].stopped and h.target.interrupted == 1
    rollbacks = [f for _, f in h.target.injected if f.phase == "rollback"]
    assert [(f.action, f.node) for f in rollbacks] == [
        ("heal", "head"), ("heal", "w1"), ("heal", "w2"),
        ("restart-node", "head"), ("restart-node", "w1"), ("restart-node", "w2")]
    assert all(t >= h.t0 + 42 for t, f in h.target.injected if f.phase == "rollback")
    j = h.journal
    assert j["verdict"] == "aborted" and len(j["aborts"]) == 1
    assert j["aborts"][0]["offset_s"] == 42 and j["aborts"][0]["condition"]["value"] == 20.0
    assert "after" not in j["steady_state"]  # the run ended before that window
    assert j["steady_state"]["during"]["end"] == h.t0 + 42
    assert len(j["rollbacks"]) == 6


def test_burn_rate_waits_for_a_full_window(tmp_path):
    h = Harness(tmp_path, exp=experiment(abort=[{"kind": "burn_rate", "above": 14.4, "window_s": 30}]))
    h.run()
    first = min(at for _, at, _ in h.probe.burn_calls)
    assert first - h.t0 == 30
    assert all(w == 30 and obj == 0.999 for obj, _, w in h.probe.burn_calls)
    ats = sorted(at - h.t0 for _, at, _ in h.probe.burn_calls)
    assert all(b - a <= 1.0 + 1e-9 for a, b in zip(ats, ats[1:], strict=False))  # checked every second


def test_client_failures_abort(tmp_path):
    exp = experiment(abort=[{"kind": "client_failures", "above": 100}])
    h = Harness(tmp_path, exp=exp, failures=lambda off: 0 if off < 33 else 250)
    result = h.run()
    assert result.verdict == ABORTED and "250 client requests failed (more than 100)" in result.reasons[0]
    assert h.offsets() == [(25, "kill-replica"), (30, "kill-gcs")]


def test_steady_state_not_met_before_the_faults(tmp_path):
    h = Harness(tmp_path, exp=experiment(rollbacks=[{"action": "heal", "target": "w1"}]))
    h.probe.verdicts = lambda start, end: {"p99": False} if end - start == 18 and start == h.t0 else {}
    result = h.run()
    assert result.verdict == ABORTED and "steady state not met before the faults: p99" in result.reasons[0]
    assert h.offsets() == []  # no fault injected
    assert [(f.action, f.node) for _, f in h.target.injected] == [("heal", "w1")]  # rollbacks still ran
    assert h.loads[0].stopped


def test_steady_state_before_may_be_only_reported(tmp_path):
    h = Harness(tmp_path, exp=experiment(require_before=False))
    h.probe.verdicts = lambda start, end: {"p99": False} if start == h.t0 and end == h.t0 + 18 else {}
    result = h.run()
    assert len(h.offsets()) == 4
    assert result.verdict == PASSED  # "before" is not a judged window by default
    assert h.journal["steady_state"]["before"]["results"][1] == {
        "name": "p99", "kind": "latency", "value": 1.0, "ok": False, "query": "q", "detail": "fake"}


def test_ctrl_c_rolls_back_and_reports_aborted(tmp_path):
    h = Harness(tmp_path, exp=experiment(rollbacks=[{"action": "heal", "target": "all"}]))

    def interrupt(t):
        if h.loads and t - h.t0 >= 35:
            h.clock.on_sleep = None
            raise KeyboardInterrupt

    h.clock.on_sleep = interrupt
    result = h.run()
    assert result.interrupted and result.verdict == ABORTED and result.reasons == ["interrupted (Ctrl-C)"]
    assert h.loads[0].stopped and h.target.interrupted == 1
    assert len([f for _, f in h.target.injected if f.phase == "rollback"]) == 3
    assert h.journal["verdict"] == "aborted"


def test_deploy_error_is_journaled_and_rollbacks_run(tmp_path):
    h = Harness(tmp_path, exp=experiment(rollbacks=[{"action": "heal", "target": "w2"}]),
                deploy_error=TargetError("deploying x failed", "boom", "fix it"))
    result = h.run()
    assert result.verdict == ABORTED and "deploying x failed: boom; fix it" in result.error
    assert h.loads == [] and [f.action for _, f in h.target.injected] == ["heal"]
    assert h.journal["error"] == result.error and h.journal["verdict"] == "aborted"


def test_unreachable_target_raises_before_anything(tmp_path):
    h = Harness(tmp_path, check_error=TargetError("cannot reach cluster 'x'", "no state", "bring it up"))
    with pytest.raises(TargetError):
        h.runner.run()
    assert h.events == [] and not (tmp_path / "reports").exists()


# -- failures and the verdict ------------------------------------------------------------------


def test_slo_violated_during_fails_naming_window_and_slo(tmp_path):
    h = Harness(tmp_path)
    h.probe.verdicts = lambda start, end: {"availability": False} if start == h.t0 + 20 else {}
    result = h.run()
    assert result.verdict == FAILED and result.reasons == ["during: availability = 1 (fake)"]


def test_only_judged_windows_decide(tmp_path):
    h = Harness(tmp_path, exp=experiment(judge=["during"]))
    h.probe.verdicts = lambda start, end: {"p99": False} if start == h.t0 and end == h.t0 + 90 else {}
    assert h.run().verdict == PASSED


def test_a_fault_that_could_not_be_injected_fails_the_run(tmp_path):
    h = Harness(tmp_path, fail={"kill-gcs"})
    result = h.run()
    assert result.verdict == FAILED
    assert result.reasons == ["fault not injected: kill-gcs (down_for_s=10) at 30s: kill-gcs failed on purpose"]
    assert len(h.offsets()) == 4  # the others went ahead
    assert h.journal["faults"][1]["ok"] is False and "on purpose" in h.journal["faults"][1]["error"]


def test_prometheus_unreachable_fails_with_the_cause(tmp_path):
    h = Harness(tmp_path)
    h.probe.evaluate_error = ConnectionError("prometheus down")
    result = h.run()
    assert result.verdict == FAILED
    assert "during: steady state could not be probed: ConnectionError: prometheus down" in result.reasons
    assert h.journal["steady_state"]["during"]["error"] == "ConnectionError: prometheus down"


def test_kill_node_restart_is_injected_after_its_duration(tmp_path):
    exp = experiment(method=[{"action": "kill-node", "target": "w1", "duration_s": 40, "schedule": {"at_s": 25}}])
    h = Harness(tmp_path, exp=exp)
    h.run()
    assert h.offsets() == [(25, "kill-node"), (65, "restart-node")]


def test_a_long_fault_does_not_delay_the_next(tmp_path):
    """kill-gcs at 30 blocks (its own thread) until kill-replica at 40 has been injected."""
    released = threading.Event()
    exp = experiment(method=[{"action": "kill-gcs", "args": {"down_for_s": 10}, "schedule": {"at_s": 30}},
                             {"action": "kill-replica", "schedule": {"at_s": 40}}])
    h = Harness(tmp_path, exp=exp, spawn=lambda fn, name: _thread(fn, name))
    inject = h.target.inject

    def slow_inject(fault):
        if fault.action == "kill-gcs":
            assert released.wait(10), "the next fault was held up by the long one"
        result = inject(fault)
        if fault.action == "kill-replica":
            released.set()
        return result

    h.target.inject = slow_inject
    result = h.run()
    assert released.is_set() and result.verdict == PASSED
    assert sorted(a for _, a in h.offsets()) == ["kill-gcs", "kill-replica"]


def _thread(fn, name):
    t = threading.Thread(target=fn, name=name, daemon=True)
    t.start()
    return t


def test_a_listener_that_raises_does_not_stop_the_run(tmp_path):
    h = Harness(tmp_path)

    def broken(event: Event):
        raise RuntimeError("printer broke")

    h.runner.bus.add(broken)
    assert h.run().verdict == PASSED


def test_decide_verdict_rules():
    ok = [{"name": "a", "kind": "availability", "ok": True}]
    assert decide_verdict(["during"], {"during": ok}, {}, [], [], True) == (PASSED, [])
    assert decide_verdict(["during"], {"during": ok}, {}, ["stopped"], [], True) == (ABORTED, ["stopped"])
    no_data = [{"name": "r", "kind": "recovery", "ok": None}]
    assert decide_verdict(["during"], {"during": no_data}, {}, [], [], False) == (PASSED, [])  # nothing to recover from
    verdict, reasons = decide_verdict(["during"], {"during": no_data}, {}, [], [], True)
    assert verdict == FAILED and "could not be judged (no data)" in reasons[0]
    verdict, reasons = decide_verdict(["during", "after"], {"during": ok}, {}, [], [], True)
    assert verdict == FAILED and reasons == ["after: not probed (the run ended before the window)"]


def test_adapters_normalize_other_packages_results():
    from dataclasses import dataclass

    @dataclass
    class Result:
        name: str
        verdict: str

        @property
        def ok(self):
            return self.verdict == "met"

    assert slo_result_dict(Result("a", "met")) == {"name": "a", "verdict": "met", "ok": True}
    assert slo_result_dict(Result("a", "no_data"))["ok"] is False
    p = normalize_progress({"started": 120, "ok": 115, "failed": 5, "phase": "running"})
    assert (p.sent, p.ok, p.failed) == (120, 115, 5) and p.extra["phase"] == "running"
    assert normalize_progress({"sent": 10, "failures": 2}).ok == 8


def test_journal_is_valid_json_after_every_event(tmp_path):
    h = Harness(tmp_path)
    seen = []

    def reread(event):
        if event.kind in ("fault_finished", "probe_result"):
            with open(h.runner.run_dir + "/journal.json") as f:
                seen.append(json.load(f)["name"])

    h.runner.bus.add(reread)
    h.run()
    assert seen and set(seen) == {"fake"}


def test_payloads_of_each_source(tmp_path):
    from chaos.run.load_driver import LoadRequest, payloads_of

    def request(**kw):
        fields = {"payload": None, "payload_name": None, "payload_file": None, **kw}
        return LoadRequest(None, [], "/", "POST", out_dir="", workers=1, timeout_s=5, metrics_port=None, **fields)

    assert payloads_of(request()) == []
    assert payloads_of(request(payload={"x": 1})) == [{"x": 1}]
    (tmp_path / "b.json").write_text('{"values": [1, 2]}')
    assert payloads_of(request(payload_file=str(tmp_path / "b.json"))) == [{"values": [1, 2]}]
    (tmp_path / "b.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    assert payloads_of(request(payload_file=str(tmp_path / "b.jsonl"))) == [{"a": 1}, {"a": 2}]
    assert len(payloads_of(request(payload_name="example:sklearn"))) >= 1


# -- the report's series and the alerts' conditions --------------------------------------------


def _grid(start, end, step, keep=lambda off: True, value=1.0):
    """Points of a range answer on the query's own grid, where ``keep(offset from the start)``."""
    n = int((end - start) / step + 1e-9)
    return [(start + k * step, value) for k in range(n + 1) if keep(k * step)]


def test_series_and_alert_conditions_are_read_after_the_slos_and_journaled(tmp_path):
    h = Harness(tmp_path)

    def answer(q, start, end, step):
        if q.startswith("sum by (application, deployment) (serve_core_deployment_replicas"):
            return [Series({"application": "default", "deployment": "Work"}, tuple(_grid(start, end, step, value=2.0)))]
        if "> 0.0144" in q:  # the fast burn held from 30 s to 39 s
            return [Series({"slo": "availability", "backend": "serve_core"},
                           tuple(_grid(start, end, step, lambda off: 30 <= off <= 39 + 1e-6)))]
        return [Series({}, tuple(_grid(start, end, step)))]

    h.prom.answer = answer
    result = h.run()
    assert result.verdict == PASSED and h.journal["warnings"] == []
    (event,) = [e for e in h.events if isinstance(e, SeriesCollected)]
    t0 = h.t0
    assert (event.start, event.end, event.step_s, event.window_s) == (t0, t0 + 90, 1.0, 5.0)
    assert event.at >= h.probe.evaluated[-1][4]  # after the SLOs were judged
    assert h.prom.url == "http://prom:9391"
    assert list(event.series) == ["requests", "errors", "p50", "p90", "p99", "replicas"]
    steps = {q: step for q, _, _, step in h.prom.calls}
    assert all(steps[e["query"]] == 1.0 for e in event.series.values())
    conditions = alert_conditions(event.alerts["rules"])
    assert [c.alert for c in conditions] == ["SLOErrorBudgetBurn", "SLOErrorBudgetBurn", "SLOLatencyHigh"]
    assert set(event.alerts["conditions"]) == {c.key for c in conditions}
    assert all(steps[c.query] == 1.5 and "slo:" not in c.query for c in conditions)  # inlined, group interval
    assert len(h.prom.calls) == 6 + 3
    # In the journal, so the report can be drawn again from the run directory alone.
    j = h.journal
    assert j["series"]["plots"]["replicas"]["series"][0] == {
        "labels": {"application": "default", "deployment": "Work"},
        "points": [[round(t0 + k, 3), 2.0] for k in range(91)]}
    assert j["alerts"]["scale"] == 0.1 and j["alerts"]["start"] == t0
    write_report(j, result.run_dir)
    with open(os.path.join(result.run_dir, "report.md")) as f:
        md = f.read()
    assert "| SLOErrorBudgetBurn | page | slo=availability, window=fast | 30 | 40.5 |" in md
    with open(os.path.join(result.run_dir, "report.html")) as f:
        html = f.read()
    assert html.count("<svg") == 3 and "Plot missing" not in html


def test_prometheus_down_after_the_run_is_a_warning_and_the_report_says_why(tmp_path):
    h = Harness(tmp_path)
    down = PrometheusUnavailable("not reachable (ConnectionError)", url="http://prom:9391", query="q", fix="start it")
    h.prom.fail = lambda q: down
    result = h.run()
    assert result.verdict == PASSED  # the SLOs were judged before; the plots are extra
    assert len(h.prom.calls) == 1  # the rest were not sent, each would wait for the same timeout
    (warning,) = h.journal["warnings"]
    assert warning.startswith("report series not read from Prometheus (requests, errors, p50, p90, p99, replicas, "
                              "SLOErrorBudgetBurn, SLOLatencyHigh): PrometheusUnavailable: Prometheus at http://prom:9391")
    plots = h.journal["series"]["plots"]
    assert plots["requests"]["error"].startswith("PrometheusUnavailable")
    assert plots["replicas"]["error"].startswith("not queried: PrometheusUnavailable")
    write_report(h.journal, result.run_dir)
    with open(os.path.join(result.run_dir, "report.html")) as f:
        html = f.read()
    assert "Plot missing: server replicas: PrometheusUnavailable: Prometheus at http://prom:9391" in html
    assert html.count("server requests, errors: PrometheusUnavailable: Prometheus at http://prom:9391") == 1
    assert "Not evaluated: SLOErrorBudgetBurn" in html


def test_a_rejected_query_spoils_only_its_own_series(tmp_path):
    h = Harness(tmp_path)
    bad = PrometheusQueryError("rejected the query (bad_data)", url="http://prom:9391", query="q", fix="fix it")
    h.prom.fail = lambda q: bad if "serve_core_deployment_replicas" in q else None
    result = h.run()
    assert result.verdict == PASSED and len(h.prom.calls) == 9
    plots = h.journal["series"]["plots"]
    assert [n for n, e in plots.items() if e["error"]] == ["replicas"]
    assert h.journal["warnings"] == ["report series not read from Prometheus (replicas): PrometheusQueryError: "
                                     "Prometheus at http://prom:9391: rejected the query (bad_data) for query 'q'. "
                                     "Fix: fix it"]


def test_a_broken_prometheus_client_does_not_fail_the_run(tmp_path):
    h = Harness(tmp_path)
    h.runner.prometheus_factory = lambda url: (_ for _ in ()).throw(ValueError(f"bad url {url}"))
    result = h.run()
    assert result.verdict == PASSED
    assert h.journal["series"]["plots"]["p99"]["error"] == "ValueError: bad url http://prom:9391"
    assert any("ValueError: bad url" in w for w in h.journal["warnings"])
