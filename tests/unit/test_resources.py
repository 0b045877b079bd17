"""chaos.run.resources: which processes are the cluster's, their roles, the trend of each (least-squares
slope and its band, a verdict) and how a run samples and judges them; and the hour soak's plan.

The trend is pure and tested with hypothesis; the runner's sampling reads a real process (this one)
through psutil, with memory allocated as the fake clock advances."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.errors import ExperimentError
from chaos.report.figures import resource_rows, resource_summary
from chaos.report.run_report import render, write_report
from chaos.run.resources import (
    FLAT,
    GROWING,
    MIB,
    SHORT,
    Series,
    Usage,
    fit,
    judge,
    judge_series,
    results,
    sample,
    series_of,
    verdict,
)
from chaos.run.verdict import FAILED, PASSED
from chaos.spec.loading import load_experiment, parse_experiment
from chaos.spec.resource_check import ResourceCheck
from chaos.spec.schedule import Snapshot, plan
from chaos.targets.processes import HOST, Proc, ProcRow, place_containers, place_embedded, role_of
from tests.unit.test_chaos_runner import Harness, experiment

pytestmark = pytest.mark.unit

SOAK = os.path.join(os.path.dirname(__file__), "..", "..", "chaos", "experiments", "soak_hour.yaml")
CHECK = ResourceCheck(max_rss_growth_mib_per_h=16, max_fd_growth_per_h=10, warmup_s=0, min_span_s=600)


# -- roles and discovery ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cmdline", "role"), [
    ("gcs_server", "/x/ray/core/src/ray/gcs/gcs_server --log_dir=/tmp/a", "gcs"),
    ("raylet", "/x/raylet --raylet_socket_name=/tmp/a", "raylet"),
    ("redis-server", "/usr/bin/redis-server 10.77.0.1:6391", "redis"),
    ("prometheus", "/usr/bin/prometheus --config.file=x", "prometheus"),
    ("ray::SERVE_CORE", "ray::SERVE_CORE_REPLICA:default#Work:036dc925:ReplicaActor.__init__", "replica"),
    ("ray::ServeRepl", "ray::ServeReplica:default:Work.handle_request", "replica"),
    ("ray::ProxyActor", "ray::ProxyActor", "proxy"),
    ("ray::Controller", "ray::Controller.run_control_loop", "controller"),
    ("ray::ServeContr", "ray::ServeController.listen_for_change", "controller"),
    ("ray::IDLE", "ray::IDLE", "worker"),
    ("ray::Dashboard", "ray::DashboardAgent", "dashboard-agent"),
    ("ray::RuntimeEn", "ray::RuntimeEnvAgent", "runtime-env-agent"),
    ("python3", "/py/bin/python3 /py/bin/ray start --block --node-ip-address=10.77.0.2", "ray-start"),
    ("python3", "/py/bin/python3 /py/site-packages/ray/dashboard/dashboard.py --host=127.0.0.1", "dashboard"),
    ("python3", "/py/bin/python3 -u /py/site-packages/ray/_private/log_monitor.py --session-dir=x", "log-monitor"),
    ("python", "/py/bin/python /py/site-packages/ray/_private/workers/default_worker.py --node-ip-address=x", "worker"),
    ("sleep", "sleep 10", "sleep"),
])
def test_roles_from_names_and_titles(name, cmdline, role):
    assert role_of(name, cmdline) == role


STATE = "/tmp/serve_core_cluster/soak"


def row(pid, ppid, name, cmdline, netns=None, cgroup=""):
    return ProcRow(pid, ppid, name, cmdline, netns, cgroup)


def test_embedded_processes_are_its_namespaces_records_state_dir_and_descendants():
    rows = [
        row(1, 0, "init", "/sbin/init", netns=100),
        row(10, 1, "redis-server", "/usr/bin/redis-server 10.77.0.1:6391", netns=100),  # recorded
        row(20, 1, "python3", "/py/ray start --block --node-ip-address=10.77.0.2", netns=201),  # head's namespace
        row(21, 20, "raylet", f"/raylet --temp_dir={STATE}/ray/head/session_x", netns=201),
        row(22, 21, "ray::Controller", "ray::Controller", netns=201),
        row(30, 1, "gcs_server", f"/gcs_server --log_dir={STATE}/ray/head/session_x/logs", netns=201),  # relaunched
        row(40, 1, "python3", "/py/ray start --block --node-ip-address=127.0.0.3", netns=100),  # loopback mode node
        row(41, 40, "raylet", "/raylet --node_ip_address=127.0.0.3", netns=100),
        row(42, 41, "ray::SERVE_CORE", "ray::SERVE_CORE_REPLICA:default#Work:1:ReplicaActor", netns=100),
        row(50, 1, "gcs_server", f"/gcs_server --log_dir={STATE}/ray/w9/session/logs", netns=100),  # by state dir
        row(60, 1, "prometheus", f"/usr/bin/prometheus --config.file={STATE}/prometheus/prometheus.yml", netns=100),
        row(70, 1, "gcs_server", "/gcs_server --log_dir=/tmp/serve_core_cluster/other/ray/head/s", netns=100),
        row(71, 1, "python", "python -m pytest", netns=100),
        row(80, 1, "python", "python -m chaos run x", netns=100),  # the runner itself
    ]
    procs = place_embedded(rows, STATE, roots={10: HOST, 40: "w1"}, netns_nodes={201: "head"}, exclude=[80])
    assert {p.pid: (p.role, p.node) for p in procs} == {
        10: ("redis", HOST), 20: ("ray-start", "head"), 21: ("raylet", "head"), 22: ("controller", "head"),
        30: ("gcs", "head"), 40: ("ray-start", "w1"), 41: ("raylet", "w1"), 42: ("replica", "w1"),
        50: ("gcs", "w9"), 60: ("prometheus", HOST)}
    # without the namespaces and records: what names the state directory (with or without a trailing
    # slash), and its descendants
    assert {p.pid for p in place_embedded(rows, STATE + "/", {}, {})} == {21, 22, 30, 50, 60}


def test_container_processes_by_cgroup_v1_and_v2():
    head, w1 = "a" * 64, "b" * 64
    rows = [row(5, 1, "gcs_server", "gcs", cgroup=f"0::/system.slice/docker-{head}.scope\n"),
            row(6, 1, "raylet", "raylet", cgroup=f"12:memory:/docker/{w1}\n11:cpu:/docker/{w1}\n"),
            row(7, 1, "bash", "bash", cgroup="0::/user.slice/session-1.scope\n")]
    procs = place_containers(rows, {head: "head", w1: "w1"})
    assert procs == [Proc(5, "gcs", "head"), Proc(6, "raylet", "w1")]


def test_sample_reads_a_live_process_and_skips_a_gone_one():
    gone = max(int(p) for p in os.listdir("/proc") if p.isdigit()) + 10_000
    usages = sample([Proc(os.getpid(), "replica", "w1"), Proc(gone, "replica", "w2")])
    assert [(u.pid, u.role, u.node) for u in usages] == [(os.getpid(), "replica", "w1")]
    assert usages[0].rss_bytes > 1 * MIB and usages[0].open_fds >= 3


# -- the trend (hypothesis) -------------------------------------------------------------------

HOUR = [float(t) for t in range(0, 3600, 10)]  # an hour at one sample every 10 s


@settings(max_examples=60, deadline=None)
@given(level=st.floats(5, 2000), sigma=st.floats(0, 4),
       noise=st.lists(st.floats(-1, 1), min_size=len(HOUR), max_size=len(HOUR)))
def test_a_flat_series_with_bounded_noise_is_flat(level, sigma, noise):
    # Noise within +-sigma moves a least-squares slope over T seconds by at most 3 sigma / T: 12 MiB/h
    # for sigma 4 MiB over an hour, under the 16 MiB/h allowed, however the noise falls.
    trend = fit([(t, level + sigma * e) for t, e in zip(HOUR, noise, strict=True)])
    assert trend is not None and abs(trend.slope_per_h) <= 3 * sigma + 1e-6
    assert verdict(trend, 16, 600) == FLAT


@settings(max_examples=60, deadline=None)
@given(level=st.floats(5, 2000), leak_per_h=st.floats(32, 500), sigma=st.floats(0, 2),
       noise=st.lists(st.floats(-1, 1), min_size=len(HOUR), max_size=len(HOUR)))
def test_a_leaking_series_is_growing(level, leak_per_h, sigma, noise):
    trend = fit([(t, level + leak_per_h * t / 3600 + sigma * e) for t, e in zip(HOUR, noise, strict=True)])
    assert trend is not None and trend.slope_per_h == pytest.approx(leak_per_h, abs=3 * sigma + 1e-6)
    assert trend.slope_per_h - trend.band_per_h > 0
    assert verdict(trend, 16, 600) == GROWING


@settings(max_examples=40, deadline=None)
@given(slope_per_h=st.floats(-100, 100), intercept=st.floats(0, 1000), n=st.integers(3, 400))
def test_an_exact_line_gives_its_slope_and_no_band(slope_per_h, intercept, n):
    trend = fit([(10.0 * i, intercept + slope_per_h * 10.0 * i / 3600) for i in range(n)])
    assert trend is not None
    assert trend.slope_per_h == pytest.approx(slope_per_h, abs=1e-6 * max(1.0, intercept))
    assert trend.band_per_h == pytest.approx(0.0, abs=1e-5 * max(1.0, intercept))


def test_a_steep_but_noisy_slope_within_the_noise_is_flat():
    # +40 MiB/h over 5 minutes, with noise of +-50 MiB alternating: the band covers zero.
    pts = [(10.0 * i, 100 + 40 * 10.0 * i / 3600 + (50 if i % 2 else -50) * (1 if i % 4 < 2 else -1))
           for i in range(30)]
    trend = fit(pts)
    assert trend is not None and trend.slope_per_h - trend.band_per_h <= 0
    assert verdict(trend, 16, 60) == FLAT


def test_too_few_points_or_too_short_a_span_is_not_judged():
    assert fit([(0.0, 1.0), (10.0, 2.0)]) is None
    assert verdict(fit([(t, 100 + t) for t in (0.0, 10.0, 20.0, 30.0)]), 16, 10) == SHORT  # 4 points
    assert verdict(fit([(10.0 * i, 100.0 + i) for i in range(20)]), 16, 600) == SHORT  # 190 s < 600 s


def test_a_one_off_step_in_a_short_life_is_not_a_leak_but_a_steady_climb_is():
    # The hour soak's last controller: judged for 17 minutes, 3 files more after minute 5 (a
    # connection opened once). Its slope is above 10 an hour, its band above zero, yet it rose
    # 3 files; the same span leaking one file a minute rose 17.
    span = [10.0 * i for i in range(103)]
    step = fit([(t, 59.0 + (3 if t >= 300 else 0)) for t in span])
    assert step is not None and step.slope_per_h > 10 and step.slope_per_h - step.band_per_h > 0
    assert verdict(step, 10, 600) == GROWING  # without a floor on the rise
    assert verdict(step, 10, 600, min_rise=5) == FLAT
    climb = fit([(t, 59.0 + t // 60) for t in span])
    assert verdict(climb, 10, 600, min_rise=5) == GROWING


def usage_samples(series):
    """[(t, [Usage])] from {(pid, role, node): [(t, rss MiB, fds)]}."""
    by_t: dict[float, list[Usage]] = {}
    for (pid, role, node), pts in series.items():
        for t, mib, fds in pts:
            by_t.setdefault(t, []).append(Usage(pid, role, node, int(mib * MIB), fds))
    return sorted(by_t.items())


def test_a_restarted_process_is_a_new_series_not_a_step():
    # A replica killed at 30 min and its successor starting 40 MiB higher: each is flat.
    first = [(t, 100.0, 20) for t in HOUR if t < 1800]
    second = [(t, 140.0, 24) for t in HOUR if t >= 1800]
    verdicts = judge(usage_samples({(11, "replica", "w1"): first, (12, "replica", "w1"): second}), CHECK)
    assert [(v.series.pid, v.rss_verdict, v.fds_verdict) for v in verdicts] == [(11, FLAT, FLAT), (12, FLAT, FLAT)]
    # had they been one series, it would grow
    merged = Series("w1", "replica", 0, tuple((t, int(m * MIB), f) for t, m, f in first + second))
    assert judge_series(merged, CHECK).rss_verdict == GROWING


def test_the_warm_up_is_left_out():
    climb = [(t, 50 + min(t, 60.0), 10) for t in HOUR if t < 900]  # +60 MiB in the first minute, then flat
    assert judge(usage_samples({(5, "proxy", "w1"): climb}), CHECK.model_copy(update={"warmup_s": 120}))[0] \
        .rss_verdict == FLAT
    assert judge(usage_samples({(5, "proxy", "w1"): climb}), CHECK)[0].rss_verdict == GROWING


def test_results_fail_on_a_growing_judged_process_and_name_it():
    leak = [(t, 100 + 50 * t / 3600, 30 + int(t / 120)) for t in HOUR]  # +50 MiB/h, +30 fds/h
    flat = [(t, 80.0, 12) for t in HOUR]
    short = [(t, 80.0, 12) for t in HOUR[:20]]
    samples = usage_samples({(7, "proxy", "w2"): leak, (8, "gcs", "head"): flat, (9, "replica", "w1"): short})
    mem, fds = results(judge(samples, CHECK), CHECK)
    assert (mem["name"], mem["ok"], mem["verdict"]) == ("memory growth", False, "violated")
    assert mem["value"] == pytest.approx(50, abs=0.5) and mem["unit"] == "MiB/h" and mem["threshold"] == 16
    assert "1 of 2 processes growing (1 too short to judge)" in mem["detail"] and "proxy w2 pid 7 +50.00" in mem["detail"]
    assert (fds["ok"], fds["value"]) == (False, pytest.approx(30, abs=1))
    # the testbed's own processes are shown but not judged by default
    samples = usage_samples({(7, "prometheus", HOST): leak, (8, "gcs", "head"): flat})
    mem, fds = results(judge(samples, CHECK), CHECK)
    assert (mem["ok"], fds["ok"]) == (True, True) and mem["detail"].startswith("all 1 processes flat")
    assert results(judge(samples, CHECK.model_copy(update={"roles": ["prometheus"]})), CHECK)[0]["ok"] is False


def test_nothing_judged_is_no_data_with_the_reason():
    samples = usage_samples({(9, "replica", "w1"): [(t, 80.0, 12) for t in HOUR[:20]]})
    for r in results(judge(samples, CHECK), CHECK, error=None):
        assert r["ok"] is None and r["verdict"] == "no_data" and "too short" in r["detail"]
    assert results([], CHECK, error="ResourceError: no state file")[0]["detail"] == "ResourceError: no state file"


def test_series_keep_the_reports_role_order():
    samples = usage_samples({(1, "redis", HOST): [(0.0, 1.0, 1)], (2, "controller", "head"): [(0.0, 1.0, 1)],
                             (3, "aaa-other", "w1"): [(0.0, 1.0, 1)], (4, "proxy", "w1"): [(0.0, 1.0, 1)]})
    assert [s.role for s in series_of(samples)] == ["controller", "proxy", "redis", "aaa-other"]


# -- the declaration --------------------------------------------------------------------------


def doc_with(resources):
    exp = experiment()
    doc = exp.model_dump(mode="json")
    doc["steady_state"]["resources"] = resources
    return doc


def test_a_bad_resource_check_names_the_field():
    with pytest.raises(ExperimentError, match=r"steady_state\.resources\.max_rss_growth_mib_per_h"):
        parse_experiment(doc_with({"max_rss_growth_mib_per_h": -1}))
    with pytest.raises(ExperimentError, match=r"steady_state\.resources\.max_fds"):
        parse_experiment(doc_with({"max_fds": 3}))
    assert parse_experiment(doc_with({})).steady_state.resources == ResourceCheck()


# -- the runner samples, judges and reports ---------------------------------------------------


class ProcessTarget:
    """The runner's fake target, whose cluster is this very process (a real one, sampled by psutil)."""

    def __init__(self, target, role="replica"):
        self._target, self.role = target, role

    def __getattr__(self, name):
        return getattr(self._target, name)

    def processes(self):
        return [Proc(os.getpid(), self.role, "w1")]


def run_sampled(tmp_path, resources, leak_mib=0, role="replica"):
    doc = doc_with(resources)
    h = Harness(tmp_path, exp=parse_experiment(doc))
    h.runner.target = ProcessTarget(h.target, role)
    held = []
    if leak_mib:  # memory this process really holds, growing with the fake time
        h.clock.on_sleep = lambda t: held.append(b"x" * (leak_mib * MIB))
    result = h.run()
    return h, result


def test_the_run_samples_every_process_and_a_flat_one_passes(tmp_path):
    h, result = run_sampled(tmp_path, {"sample_every_s": 5, "warmup_s": 5, "min_span_s": 30})
    assert result.verdict == PASSED, result.reasons
    res = h.journal["resources"]
    assert res["columns"] == ["pid", "role", "node", "rss_bytes", "open_fds"] and res["every_s"] == 5
    offsets = [s["offset_s"] for s in res["samples"]]
    assert offsets[:3] == [0.0, 5.0, 10.0] and offsets[-1] <= 90 and len(offsets) >= 17
    assert all(s["procs"][0][:3] == [os.getpid(), "replica", "w1"] for s in res["samples"])
    window = h.journal["steady_state"]["resources"]
    assert [r["name"] for r in window["results"]] == ["memory growth", "open files growth"]
    assert all(r["ok"] for r in window["results"])


def test_a_growing_process_fails_the_run_when_required_and_is_a_finding_otherwise(tmp_path):
    h, result = run_sampled(tmp_path / "a", {"sample_every_s": 5, "warmup_s": 5, "min_span_s": 30}, leak_mib=1)
    assert result.verdict == FAILED
    assert any(r.startswith("resources: memory growth = ") and "replica w1 pid" in r for r in result.reasons)
    h, result = run_sampled(tmp_path / "b", {"sample_every_s": 5, "warmup_s": 5, "min_span_s": 30,
                                             "require_flat": False}, leak_mib=1)
    assert result.verdict == PASSED
    assert h.journal["steady_state"]["resources"]["results"][0]["ok"] is False  # reported all the same
    summary = resource_summary(h.journal)
    assert summary["growing"] == [f"replica w1 pid {os.getpid()}"] and summary["required"] is False
    assert summary["max_rss_slope_mib_per_h"] > 16
    # the report: a section with the table and both plots, the SVGs beside report.md
    path = write_report(h.journal, h.result.run_dir)
    md = open(path).read()
    assert "## Memory and open files" in md and "| replica | w1 | 1 |" in md and "**growing**" in md
    assert "Reported as a finding: the run does not require it." in md
    assert "![Memory (RSS, MiB) per process, by role](resources-memory.svg)" in md
    svg = open(os.path.join(h.result.run_dir, "resources-memory.svg")).read()
    assert svg.startswith("<svg") and 'class="series"' in svg and "replica (1)" in svg
    html = open(os.path.join(h.result.run_dir, "report.html")).read()
    assert "Memory and open files" in html and "Open files per process, by role" in html


def test_a_run_without_a_resource_check_samples_nothing_and_says_nothing(tmp_path):
    h = Harness(tmp_path)
    h.run()
    assert h.journal["resources"] is None and "resources" not in h.journal["steady_state"]
    assert "Memory and open files" not in render(h.journal)


def test_sampling_errors_are_journaled_and_leave_the_check_without_data(tmp_path):
    h = Harness(tmp_path, exp=parse_experiment(doc_with({"sample_every_s": 10})))
    result = h.run()  # the fake target has no processes(): every sample fails
    assert result.verdict == FAILED
    assert any("resources: memory growth could not be judged" in r and "cannot list its processes" in r
               for r in result.reasons)
    assert h.journal["resources"]["errors"] and not h.journal["resources"]["samples"]
    assert sum("resources not sampled" in w for w in h.journal["warnings"]) == 1


def test_report_rows_group_processes_by_role_and_node():
    samples = usage_samples({(11, "replica", "w1"): [(t, 100.0, 20) for t in HOUR if t < 1800],
                             (12, "replica", "w1"): [(t, 140.0, 24) for t in HOUR if t >= 1800],
                             (13, "prometheus", HOST): [(t, 100 + 50 * t / 3600, 9) for t in HOUR]})
    rows = resource_rows(judge(samples, CHECK))
    assert [(r.role, r.node, r.processes, r.rss_mib, r.fds, r.verdict, r.growing) for r in rows] == [
        ("replica", "w1", 2, "140", "24", FLAT, False),
        ("prometheus", HOST, 1, "150", "9", "growing (not judged)", None)]


# -- the hour soak ----------------------------------------------------------------------------

WORKER_OUT = {"kill-node", "restart-node", "partition"}  # a whole worker out of service
NEEDS_VIEW = {"kill-replica", "kill-proxy", "kill-controller"}  # find their process through Ray
SETTLE_S = 60.0


def busy_until(f):
    hold = {"kill-node": 40.0, "kill-gcs": float(f.args.get("down_for_s", 5))}.get(f.action, f.duration_s or 0.0)
    return f.at_s + hold + (SETTLE_S if f.action in WORKER_OUT | {"kill-gcs"} else 0.0)


def unfair_pairs(planned):
    """Pairs of faults that overlap unfairly: both workers out at once, a fault on a node while it is
    down, or a fault that needs Ray's view while the GCS is down."""
    faults = [f for f in planned if f.restart_of is None]
    out = []
    for i, a in enumerate(faults):
        for b in faults[i + 1:]:
            if b.at_s >= busy_until(a):
                break
            if ((a.action in WORKER_OUT and b.action in WORKER_OUT)
                    or (a.action in ("kill-node", "restart-node") and b.node == a.node)
                    or (a.action == "kill-gcs" and (b.action in NEEDS_VIEW or b.node == "head"))
                    or (b.action == "kill-gcs" and a.action in ("kill-node", "restart-node"))):
                out.append((a.describe(), a.at_s, b.describe(), b.at_s))
    return out


def test_the_hour_soak_plans_every_fault_kind_fairly():
    exp = load_experiment(SOAK)
    assert exp.run_s == 3600 and exp.load.profile.rate == 100 and exp.availability_objective() == 0.9999
    assert exp.steady_state.resources is not None and exp.steady_state.resources.require_flat
    assert all(f.schedule.random is not None and f.schedule.random.rate_per_min for f in exp.method)
    planned = plan(exp, Snapshot.assumed(exp.target.workers))
    kinds = {(f.action, f.args.get("mode")) for f in planned}
    assert kinds >= {("kill-replica", None), ("kill-proxy", None), ("kill-controller", None), ("kill-gcs", None),
                     ("kill-node", None), ("restart-node", None), ("partition", "cut"), ("partition", "freeze"),
                     ("netem", None), ("cpu-burn", None)}
    assert {f.index for f in planned} == set(range(len(exp.method)))  # every entry fires at least once
    assert unfair_pairs(planned) == []


def test_the_soak_shortened_keeps_rates_and_holds():
    exp = load_experiment(SOAK, duration=360)
    assert exp.run_s == pytest.approx(360) and exp.load.profile.duration_s == 360
    assert exp.steady_state.before_s == pytest.approx(12) and exp.steady_state.resources.min_span_s == pytest.approx(60)
    hour = load_experiment(SOAK)
    for short, long in zip(exp.method, hour.method, strict=True):
        assert short.schedule.random.rate_per_min == long.schedule.random.rate_per_min
        assert short.duration_s == long.duration_s and short.args == long.args
    with pytest.raises(ExperimentError, match="--duration"):
        load_experiment(SOAK, duration=0)
