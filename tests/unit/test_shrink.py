"""chaos.shrink.shrink, chaos.shrink.search, chaos.shrink.schedule: the search (ddmin, simplify, the budget) as pure logic against predicates,
the pinning of a run's planned schedule into an explicit experiment, the judging of a run's
failure, and the shrinker's output against a candidate runner that writes journals."""

from __future__ import annotations

import io
import json
import math
import os
import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos import cli
from chaos.shrink.schedule import (
    FAILED_REQUESTS,
    Pinned,
    candidate_experiment,
    experiment_yaml,
    fails_like,
    failure_signature,
    inexact,
    not_tested,
    pin,
    simplify_steps,
)
from chaos.shrink.search import Exhausted, Memo, ddmin, simplify
from chaos.shrink.shrink import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_INTERRUPTED,
    EXIT_NOT_REPRODUCED,
    MINIMAL_FILE,
    SUMMARY_FILE,
    Shrinker,
    ShrinkError,
    ShrinkOptions,
)
from chaos.spec.loading import load_experiment, parse_experiment
from chaos.spec.schedule import Snapshot, plan
from chaos.targets.base import TargetError

# -- the search ---------------------------------------------------------------------------------


def unbounded(predicate):
    return Memo(predicate, lambda runs: None)


def within(max_runs):
    return lambda runs: f"max runs {max_runs}" if runs >= max_runs else None


schedules = st.integers(min_value=0, max_value=24).flatmap(
    lambda n: st.tuples(st.just(list(range(n))), st.sets(st.integers(0, max(n - 1, 0)), min_size=1 if n else 0,
                                                         max_size=n)))


def is_one_minimal(result, fails):
    return all(not fails([x for x in result if x != y]) for y in result)


@settings(deadline=None)  # a loaded two-core machine
@given(schedules)
def test_ddmin_finds_exactly_the_faults_that_fail_together(case):
    items, planted = case
    fails = unbounded(lambda c: planted <= set(c))  # fails when every planted fault is in
    result, complete = ddmin(items, fails)
    assert complete and result == sorted(planted)
    assert fails(result) and is_one_minimal(result, fails)


@settings(deadline=None)  # a loaded two-core machine
@given(schedules)
def test_ddmin_keeps_one_of_faults_that_each_fail_alone(case):
    items, planted = case
    fails = unbounded(lambda c: bool(planted & set(c)) or not items)  # any planted fault is enough
    result, complete = ddmin(items, fails)
    assert complete and fails(result) and is_one_minimal(result, fails)
    assert len(result) == (1 if items else 0) and set(result) <= planted | set(items if not planted else ())


@settings(deadline=None)  # a loaded two-core machine
@given(st.integers(min_value=2, max_value=40), st.data())
def test_one_planted_fault_among_harmless_ones_takes_logarithmic_runs(n, data):
    planted = data.draw(st.integers(0, n - 1))
    fails = unbounded(lambda c: planted in c)
    result, complete = ddmin(list(range(n)), fails)
    assert result == [planted] and complete
    assert fails.runs <= 2 * math.ceil(math.log2(n)) + 1  # two halves per level, and the empty schedule


@settings(deadline=None)  # a loaded two-core machine
@given(schedules, st.integers(min_value=0, max_value=12))
def test_the_budget_holds_and_the_result_still_fails(case, max_runs):
    items, planted = case
    calls = []

    def predicate(c):
        calls.append(c)
        return planted <= set(c)

    fails = Memo(predicate, within(max_runs))
    result, complete = ddmin(items, fails)
    assert len(calls) == fails.runs <= max_runs
    assert planted <= set(result) and set(result) <= set(items)  # a failing schedule, never a guess
    assert [x for x in items if x in result] == result  # in the original order
    if complete:
        assert result == sorted(planted)
    else:
        assert fails.stopped == f"max runs {max_runs}"


def test_each_schedule_runs_once():
    calls = []
    fails = unbounded(lambda c: calls.append(c) or 3 in c)
    ddmin(list(range(10)), fails)
    assert len(calls) == len({frozenset(c) for c in calls})
    with pytest.raises(Exhausted):
        Memo(lambda c: True, within(0))([1])


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(schedules, st.integers(min_value=0, max_value=2**32), st.floats(min_value=0.0, max_value=0.6))
def test_a_flaky_predicate_gives_a_schedule_that_failed_within_the_budget(case, seed, noise):
    """As documented: each schedule's first outcome is believed, so a schedule that failed by
    chance may be kept; the result is always one that failed when it ran, a subset of the
    original, and 1-minimal against the outcomes seen."""
    items, planted = case
    rng = random.Random(seed)
    fails = Memo(lambda c: planted <= set(c) or rng.random() < noise, within(20))
    result, complete = ddmin(items, fails)
    assert fails.runs <= 20 and set(result) <= set(items)
    assert fails.known.get(frozenset(result), True)  # failed when run (the original is assumed to)
    if complete and len(result) > 1:
        assert all(fails.known[frozenset(x for x in result if x != y)] is False for y in result)


def test_simplify_keeps_each_step_that_still_fails_and_stops_at_the_budget():
    halve = lambda x: x // 2 if x > 1 else None  # noqa: E731
    fails = unbounded(lambda c: sum(c) >= 10)
    assert simplify([16, 8], [halve], fails) == ([8, 4], True)  # 16 -> 8 kept (8+8), 8 -> 4 kept (8+4)
    fails = Memo(lambda c: True, within(1))
    assert simplify([16, 8], [halve], fails) == ([8, 8], False)


# -- pinning ------------------------------------------------------------------------------------

DOC = {
    "name": "mixed", "seed": 11,
    "target": {"kind": "embedded", "name": "x", "workers": 3},
    "application": {"import_path": "tests.e2e.fault_app:app"},
    "load": {"profile": {"kind": "constant", "rate": 50, "duration_s": 120}, "proxies": "workers"},
    "steady_state": {"before_s": 10, "during_s": 100, "after_s": 10,
                     "slos": [{"kind": "availability", "objective": 0.99}]},
    "method": [
        {"action": "kill-replica", "target": {"deployment": "Work"}, "schedule": {"random": {"count": 3}}},
        {"action": "kill-replica", "target": {"node": "random-worker", "deployment": "Work"},
         "schedule": {"every_s": 30}},
        {"action": "kill-node", "target": "random-worker", "duration_s": 7, "schedule": {"random": {"count": 2}}},
        {"action": "cpu-burn", "target": "worker", "args": {"cores": 2}, "duration_s": 3, "schedule": {"at_s": 40}},
        {"action": "partition", "target": "all", "args": {"mode": "freeze"}, "duration_s": 2,
         "schedule": {"random": {"rate_per_min": 3, "min_gap_s": 5}}},
        {"action": "netem", "target": "any", "args": {"delay_ms": 20, "loss_pct": 1.5}, "duration_s": 4,
         "schedule": {"at_s": 55.5}},
        {"action": "kill-gcs", "schedule": {"at_s": 70}},
        {"action": "kill-controller", "target": "head", "schedule": {"every_s": 45, "start_s": 12}},
    ],
    "rollbacks": [{"action": "heal", "target": "all"}],
    "abort": [{"kind": "client_failures", "above": 50}],
}


def journal_of(doc, **fields):
    exp = parse_experiment(doc)
    planned = plan(exp, Snapshot.assumed(exp.target.workers))
    return {"name": exp.name, "experiment": exp.model_dump(mode="json"), "plan": [p.to_dict() for p in planned],
            "start": 1000.0, "end": 1100.0, **fields}


def same_fault(p):
    """What a planned fault does, apart from the kill-replica victim's seed."""
    return (p.at_s, p.action, p.node, p.deployment, p.app, p.args, p.duration_s, p.restart_of is not None)


@settings(deadline=None)  # a loaded two-core machine
@given(st.integers(min_value=0, max_value=2**31))
def test_pinning_plans_the_same_faults_at_the_same_times_on_the_same_nodes(seed):
    doc = {**DOC, "seed": seed}
    journal = journal_of(doc)
    base, pinned = pin(journal)
    exp = candidate_experiment(base, pinned, "mixed-c00", "")
    original = plan(parse_experiment(doc), Snapshot.assumed(3))
    replay = plan(exp, Snapshot.assumed(3))
    assert sorted(map(same_fault, replay), key=repr) == sorted(map(same_fault, original), key=repr)
    assert all(f.schedule.at_s is not None for f in exp.method)  # nothing left to chance ...
    assert all(f.target.node not in ("random-worker", "any", "worker", "all") for f in exp.method)
    # ... but the kill-replica victim's seed, which comes from the fault's place in the method
    assert {p.id for p in pinned if p.entry["action"] == "kill-replica"} == {n.split(":")[0] for n in inexact(pinned)}
    # a kill-node and its restart stay one fault
    assert len(pinned) == len([p for p in original if not p.restart_of])


def test_a_replica_killed_anywhere_is_pinned_to_the_node_of_the_runs_victim():
    journal = journal_of(DOC)
    anywhere = [p for p in journal["plan"] if p["action"] == "kill-replica" and not p["node"]]
    assert len(anywhere) == 3
    journal["faults"] = [{**anywhere[0], "id": "f0", "output": {"target": {"node": "w2", "pid": 7}}},
                         {**anywhere[1], "id": "f1", "output": None}]  # the second could not be injected
    _, pinned = pin(journal)
    nodes = [(p.entry.get("target") or {}).get("node") for p in pinned
             if p.entry["action"] == "kill-replica" and p.entry["schedule"]["at_s"] in {a["at_s"] for a in anywhere}]
    assert nodes == ["w2", None, None]  # the third never ran (or ran after an abort): as planned


def test_pinned_schedule_keeps_the_run_and_restarts_nodes_it_kills():
    base, pinned = pin(journal_of(DOC))
    exp = candidate_experiment(base, pinned[:2], "mixed-c01", "two faults", target="embedded:other")
    assert exp.load == parse_experiment(DOC).load and exp.steady_state == parse_experiment(DOC).steady_state
    assert exp.seed == 11 and exp.target.name == "other" and exp.target.workers == 3
    assert [r.action for r in exp.rollbacks] == ["heal"]
    assert [f.name for f in exp.method] == [json.loads(p.entry_json)["name"] for p in pinned[:2]]
    for action in ("kill-node", "partition"):
        exp = candidate_experiment(base, [p for p in pinned if p.entry["action"] == action], "mixed-c02", "")
        assert [r.action for r in exp.rollbacks] == ["heal", "restart-node"]
        assert exp.rollbacks[1].target.node == "all" and exp.rollbacks[1].only_if_down
    assert pinned[0].id == "F1" and pinned[0].describe() == "F1 kill-replica node=w3 deployment=Work at 10s"
    with pytest.raises(ShrinkError):
        pin({"plan": []})


def test_candidate_yaml_is_lean_and_reads_back_the_same(tmp_path):
    base, pinned = pin(journal_of(DOC))
    exp = candidate_experiment(base, pinned, "mixed-c00", "all of them")
    text = experiment_yaml(exp, "c00 of a test\nrun it: python -m chaos run THIS_FILE")
    assert text.startswith("# c00 of a test\n# run it:") and "state_root" not in text  # defaults left out
    path = tmp_path / "c00.yaml"
    path.write_text(text)
    assert load_experiment(str(path)) == exp
    assert yaml.safe_load(text)["target"]["kind"] == "embedded"


def test_simplify_steps_shorten_shrink_and_move_earlier():
    steps = simplify_steps((10.0, 60.0))
    p = Pinned.of("F3", {"action": "cpu-burn", "target": {"node": "w1"}, "args": {"cores": 2}, "duration_s": 6,
                         "schedule": {"at_s": 30}})
    shorter, smaller, earlier = (s(p) for s in steps)
    assert shorter.entry["duration_s"] == 3 and smaller.entry["args"] == {"cores": 1}
    assert earlier.entry["schedule"]["at_s"] == 10.0 and earlier.id == "F3"
    at_start = Pinned.of("F1", {"action": "kill-controller", "schedule": {"at_s": 10.0}})
    assert [s(at_start) for s in steps] == [None, None, None]


# -- judging ------------------------------------------------------------------------------------


def test_failure_signature_reads_judged_slos_and_abort_conditions():
    j = {"experiment": {"steady_state": {"judge": ["during", "whole"]}}, "verdict": "aborted",
         "aborts": [{"reason": "x", "condition": {"kind": "client_failures"}},
                    {"reason": "y", "condition": {"kind": "interrupt"}}],
         "steady_state": {"before": {"results": [{"name": "p99", "ok": False}]},
                          "during": {"results": [{"name": "availability", "kind": "availability", "ok": False},
                                                 {"name": "p99", "ok": None}]},
                          "whole": {"results": [{"name": "recovery", "ok": True}]}}}
    sig = failure_signature(j)
    assert sig == {"abort:client_failures", "slo:availability", FAILED_REQUESTS}  # not the unjudged window, Ctrl-C
    assert fails_like(j, frozenset({"slo:availability"}), "same")
    assert not fails_like(j, frozenset({"slo:p99"}), "same") and fails_like(j, frozenset({"slo:p99"}), "any")
    # A run that ended before its abort fired, failing its availability SLO instead, fails the same way ...
    aborted = failure_signature({"verdict": "aborted", "aborts": [{"condition": {"kind": "client_failures"}}]})
    late = {**j, "verdict": "failed", "aborts": [], "steady_state": {"during": {"results": [
        {"name": "avail", "kind": "availability", "ok": False}]}}}
    assert fails_like(late, aborted, "same") and not fails_like(late, aborted, "exact")
    # ... but not a latency SLO alone
    slow = {**late, "steady_state": {"during": {"results": [{"name": "p99", "kind": "latency", "ok": False}]}}}
    assert not fails_like(slow, aborted, "same") and fails_like(slow, aborted, "any")
    passed = {**j, "verdict": "passed"}
    assert not any(fails_like(passed, sig, m) for m in ("same", "any", "verdict"))
    not_injected = {"verdict": "failed", "reasons": ["fault not injected: ..."], "steady_state": {}}
    assert not fails_like(not_injected, sig, "any") and fails_like(not_injected, sig, "verdict")
    assert not_tested(not_injected) is None
    assert not_tested({"aborts": [{"reason": "error: TargetError: x", "condition": {"kind": "error"}}]}) == \
        "error: TargetError: x"


# -- the shrinker, with a candidate runner that writes journals -----------------------------------

PLANTED_DOC = {
    "name": "planted", "seed": 1,
    "application": {"import_path": "tests.e2e.fault_app:app"},
    "load": {"profile": {"kind": "constant", "rate": 100, "duration_s": 30}, "proxies": "w1"},
    "steady_state": {"before_s": 5, "during_s": 20, "after_s": 5,
                     "slos": [{"kind": "availability", "objective": 0.99}]},
    "method": [{"action": "cpu-burn", "target": "w2", "args": {"cores": 1}, "duration_s": 1,
                "schedule": {"at_s": 5 + i}} for i in range(6)]
              + [{"name": "planted", "action": "partition", "target": "w1", "args": {"mode": "freeze"},
                  "duration_s": 4, "schedule": {"at_s": 12}}]
              + [{"action": "kill-controller", "schedule": {"at_s": 13 + i}} for i in range(6)],
    "abort": [{"kind": "client_failures", "above": 20}],
}


class FakeRuns:
    """Writes the journal a run of the candidate would: aborted by client failures when the
    planted fault is in it and held at least ``min_hold_s`` (or ``always``), else passed."""

    def __init__(self, clock=None, always=None, min_hold_s=0.0, interrupt_at=None, untested=()):
        self.calls, self.clock, self.always, self.min_hold_s, self.interrupt_at = [], clock, always, min_hold_s, interrupt_at
        self.untested = set(untested)  # these calls (0-based) end in a runner error before the load
        self.waits = []

    def __call__(self, path, out_root, deploy, wait):
        exp = load_experiment(path)
        self.calls.append(exp)
        self.waits.append(wait)
        if self.interrupt_at is not None and len(self.calls) > self.interrupt_at:
            raise KeyboardInterrupt
        if self.clock is not None:
            self.clock.t += 100.0
        planted = [f for f in exp.method if (f.name or "").endswith("planted")]
        fails = self.always if self.always is not None else any(f.duration_s >= self.min_hold_s for f in planted)
        d = os.path.join(out_root, exp.name)
        os.makedirs(d)
        if len(self.calls) - 1 in self.untested:
            error = "error: TargetError: no proxy for serve_core on w1"
            with open(os.path.join(d, "journal.json"), "w") as f:
                json.dump({"experiment": exp.model_dump(mode="json"), "verdict": "aborted", "reasons": [error],
                           "aborts": [{"reason": error, "condition": {"kind": "error"}}]}, f)
            return d
        with open(os.path.join(d, "journal.json"), "w") as f:
            json.dump({"name": exp.name, "experiment": exp.model_dump(mode="json"),
                       "verdict": "aborted" if fails else "passed",
                       "reasons": ["25 client requests failed (more than 20)"] if fails else [],
                       "aborts": [{"condition": {"kind": "client_failures"}}] if fails else [],
                       "steady_state": {}}, f)
        return d


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def failed_run(tmp_path):
    d = tmp_path / "planted-20261207-170000"
    d.mkdir()
    journal = journal_of(PLANTED_DOC, verdict="aborted", reasons=["130 client requests failed (more than 20)"],
                         aborts=[{"reason": "...", "condition": {"kind": "client_failures", "above": 20}}],
                         steady_state={"whole": {"results": [{"name": "availability", "ok": True}]}})
    (d / "journal.json").write_text(json.dumps(journal))
    return d


def test_the_shrinker_finds_the_planted_fault_among_a_dozen_harmless_ones(failed_run, tmp_path):
    runs, out = FakeRuns(), io.StringIO()
    result = Shrinker(str(failed_run), ShrinkOptions(max_runs=20, out=str(tmp_path / "s")), runner=runs, out=out).run()
    assert result.exit_code == EXIT_FOUND and result.complete
    assert [p.id for p in result.minimal] == ["F7"] and result.minimal[0].entry["name"] == "F7 planted"
    minimal = load_experiment(result.minimal_path)
    assert [(f.action, f.target.node, f.duration_s, f.schedule.at_s) for f in minimal.method] == \
        [("partition", "w1", 4, 12)]
    assert len(runs.calls) <= 2 * math.ceil(math.log2(13)) + 2  # the replay, the halves, the empty schedule
    assert [len(e.method) for e in runs.calls[:1]] == [13] and len(runs.calls[-1].method) == 0
    summary = (tmp_path / "s" / SUMMARY_FILE).read_text()
    assert "13 faults -> 1" in summary and "1-minimal" in summary and f"runs used: {len(runs.calls)} of 20" in summary
    data = json.loads((tmp_path / "s" / "shrink.json").read_text())
    assert data["runs"] == len(runs.calls) == len(os.listdir(tmp_path / "s" / "candidates"))
    assert all(os.path.isdir(tmp_path / "s" / t["run_dir"]) for t in data["trials"])
    printed = out.getvalue()
    assert "[c00] replay: 13 fault(s) F1 F2" in printed
    assert "FAILS: aborted (abort:client_failures, failed requests)" in printed
    assert "runs 1 of 20" in printed and summary in printed


def test_a_run_that_does_not_fail_again_is_not_reproducible(failed_run, tmp_path):
    runs = FakeRuns(always=False)
    result = Shrinker(str(failed_run), ShrinkOptions(out=str(tmp_path / "s")), runner=runs).run()
    assert result.exit_code == EXIT_NOT_REPRODUCED and len(runs.calls) == 1 and result.minimal_path is None
    assert "did not fail on replay" in (tmp_path / "s" / SUMMARY_FILE).read_text()


def test_on_the_bound_the_smallest_failing_schedule_so_far_may_not_be_minimal(failed_run, tmp_path):
    clock = Clock()
    runs = FakeRuns(clock=clock)
    result = Shrinker(str(failed_run), ShrinkOptions(max_time_s=450, out=str(tmp_path / "s")), runner=runs,
                      clock=clock).run()
    assert result.exit_code == EXIT_FOUND and not result.complete
    assert len(runs.calls) == 4  # each takes 100 s: a fifth would end past 450 s
    assert "F7" in [p.id for p in result.minimal] and len(result.minimal) < 13
    summary = (tmp_path / "s" / SUMMARY_FILE).read_text()
    assert "may not be minimal" in summary and "--max-time" in summary
    runs = FakeRuns()
    result = Shrinker(str(failed_run), ShrinkOptions(max_runs=2, out=str(tmp_path / "t")), runner=runs).run()
    assert len(runs.calls) == 2 and not result.complete and len(result.minimal) == 7  # the half holding F7


def test_simplify_and_confirm(failed_run, tmp_path):
    runs = FakeRuns(min_hold_s=2.0)  # the freeze must hold 2 s to fail
    result = Shrinker(str(failed_run), ShrinkOptions(simplify=True, confirm=2, out=str(tmp_path / "s")),
                      runner=runs).run()
    entry = result.minimal[0].entry
    assert entry["duration_s"] == 2.0 and entry["schedule"]["at_s"] == 5  # halved once, moved to the window's start
    assert [e.method[0].duration_s for e in runs.calls[-2:]] == [2.0, 2.0]  # the confirmations ran the result
    assert "confirmation: failed 2 of 2 rerun(s)" in (tmp_path / "s" / SUMMARY_FILE).read_text()


def test_interrupted_shrink_writes_the_smallest_failing_schedule_so_far(failed_run, tmp_path):
    result = Shrinker(str(failed_run), ShrinkOptions(out=str(tmp_path / "s")), runner=FakeRuns(interrupt_at=2)).run()
    assert result.exit_code == EXIT_INTERRUPTED and not result.complete
    assert [p.id for p in result.minimal] == [f"F{i}" for i in range(1, 8)]  # c01 failed with the first half
    assert len(load_experiment(str(tmp_path / "s" / MINIMAL_FILE)).method) == 7
    assert "interrupted" in (tmp_path / "s" / SUMMARY_FILE).read_text()


def test_a_cluster_gone_midway_stops_with_what_was_found(failed_run, tmp_path):
    runs = FakeRuns()

    def runner(path, out_root, deploy, wait):
        if len(runs.calls) == 3:
            raise TargetError("cannot reach cluster 'x'", "gone", "bring it up")
        return runs(path, out_root, deploy, wait)

    result = Shrinker(str(failed_run), ShrinkOptions(out=str(tmp_path / "s")), runner=runner).run()
    assert result.exit_code == EXIT_ERROR and len(result.minimal) == 7
    assert "could not go on: cannot reach cluster" in (tmp_path / "s" / SUMMARY_FILE).read_text()
    with pytest.raises(TargetError):  # not even the replay ran: nothing to write
        Shrinker(str(failed_run), ShrinkOptions(out=str(tmp_path / "t")), runner=runner).run()


def test_a_run_that_did_not_test_its_schedule_is_run_again_not_counted_as_passing(failed_run, tmp_path):
    runs = FakeRuns(untested={1, 3, 4})  # c01 once, c03 twice: each then runs a third time
    result = Shrinker(str(failed_run), ShrinkOptions(out=str(tmp_path / "s")), runner=runs).run()
    assert result.exit_code == EXIT_FOUND and [p.id for p in result.minimal] == ["F7"]
    data = json.loads((tmp_path / "s" / "shrink.json").read_text())
    assert [t["faults"] == data["trials"][1]["faults"] for t in data["trials"][1:3]] == [True, True]
    assert [bool(t["untested"]) for t in data["trials"]][:6] == [False, True, False, True, True, False]
    assert data["runs"] == len(runs.calls) == 10  # the seven of the search, and three again
    # a retry, and a run after a failing one, waits for the cluster first
    assert runs.waits[:7] == [False, True, True, True, True, True, False]
    runs = FakeRuns(untested={2, 3, 4})  # c02 three times: no outcome, stop with what was found
    result = Shrinker(str(failed_run), ShrinkOptions(out=str(tmp_path / "t")), runner=runs).run()
    assert result.exit_code == EXIT_ERROR and len(result.minimal) == 7 and len(runs.calls) == 5
    assert "could not test its schedule in 3 runs" in (tmp_path / "t" / SUMMARY_FILE).read_text()
    runs = FakeRuns(untested={0, 1, 2})
    result = Shrinker(str(failed_run), ShrinkOptions(out=str(tmp_path / "u")), runner=runs).run()
    assert result.exit_code == EXIT_ERROR and result.minimal_path is None
    assert "could not replay" in (tmp_path / "u" / SUMMARY_FILE).read_text()


def test_what_cannot_be_shrunk_says_why(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "journal.json").write_text(json.dumps(journal_of(PLANTED_DOC, verdict="passed", reasons=[])))
    with pytest.raises(ShrinkError, match="only a failed or aborted run"):
        Shrinker(str(d))
    (d / "journal.json").write_text(json.dumps(journal_of(PLANTED_DOC, verdict="failed",
                                                          reasons=["fault not injected: kill-controller"])))
    with pytest.raises(ShrinkError, match="--match verdict"):
        Shrinker(str(d))
    assert Shrinker(str(d), ShrinkOptions(match="verdict")).original == frozenset()
    with pytest.raises(ShrinkError, match="no readable journal"):
        Shrinker(str(tmp_path / "nothing"))
    with pytest.raises(ShrinkError, match="not even the replay"):
        Shrinker(str(d), ShrinkOptions(match="verdict", max_time_s=50)).run()  # the run took 100 s
    assert cli.main(["shrink", str(tmp_path / "nothing")]) == 3
    assert cli.main(["shrink", str(d), "--max-runs", "0"]) == 3
    (d / "journal.json").write_text(json.dumps(journal_of(
        PLANTED_DOC, verdict="aborted", reasons=["error: TargetError: x"],
        aborts=[{"reason": "error: TargetError: x", "condition": {"kind": "error"}}])))
    with pytest.raises(ShrinkError, match="did not test its schedule"):
        Shrinker(str(d), ShrinkOptions(match="verdict"))
