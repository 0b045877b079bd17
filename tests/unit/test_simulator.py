"""The trace-driven simulator: the real policy on a simulated clock, no Ray, no sockets."""

import json
import math
import time

import pytest
from pydantic import ValidationError

from serve_core.errors import ConfigError
from tune import simulate_cli as cli
from tune import simulator as sim

START_S = 1.5  # replica start time in these tests


def settings(service=0.1, **kw):
    ac = dict(min_replicas=1, max_replicas=10, target_ongoing_requests=2, upscale_delay_s=5,
              downscale_delay_s=10, look_back_period_s=2)
    ac.update(kw.pop("ac", {}))
    kw.setdefault("replica_start_time", START_S)
    return sim.SimulationSettings(autoscaling_config=ac, service_time=service, **kw)


def decisions(res, reason=None):
    return [d for d in res.decisions if reason is None or d.reason == reason]


def test_timings_match_the_live_system():
    from serve_core.control import controller
    from serve_core.data import caller, router

    assert sim.LOOP_PERIOD_S == controller.LOOP_PERIOD_S
    assert sim.DEMAND_FRESH_S == controller.DEMAND_FRESH_S
    assert sim.REPORT_INTERVAL_S == caller.REPORT_INTERVAL_S
    assert sim.HELD_AT_ZERO_MAX == router.HELD_AT_ZERO_MAX


def test_arrivals_from_rates_as_loadgen_schedules():
    assert sim.arrivals_from_rates([(2, 10)]) == pytest.approx([i / 10 for i in range(20)])
    times = sim.arrivals_from_rates([(1, 4), (1, 0), (1, 2)])
    assert times == pytest.approx([0, 0.25, 0.5, 0.75, 2.0, 2.5])
    poisson = sim.arrivals_from_rates([(100, 50)], poisson=True, seed=3)
    assert 4500 < len(poisson) < 5500 and poisson == sorted(poisson)
    assert poisson == sim.arrivals_from_rates([(100, 50)], poisson=True, seed=3)


def test_constant_load_gives_steady_replicas():
    # 30 req/s of 0.1 s: 3 ongoing, 1.5 per replica at target 2 -> 2 replicas, and no more
    res = sim.simulate(sim.arrivals_from_rates([(120, 30)]), settings())
    late = [r for r in res.timeline if r.t_s >= 15]
    assert {r.target for r in late} == {2} and {r.running for r in late} == {2}
    assert res.summary.max_replicas == 2 and res.summary.outcomes["ok"] == 3600
    assert res.summary.p99_s == pytest.approx(0.1)  # never a queue: capacity to spare
    assert res.summary.availability == 1.0


def test_step_scales_out_after_upscale_delay_and_in_after_downscale_delay():
    # 5/s (0.5 ongoing: 1 replica), 30/s from t=30 (3 ongoing: 2 replicas, not a panic), 5/s from t=60
    res = sim.simulate(sim.arrivals_from_rates([(30, 5), (30, 30), (60, 5)]), settings())
    up, down = decisions(res, "scale_up"), decisions(res, "scale_down")
    assert [(d.before, d.after) for d in up] == [(1, 2)] and [(d.before, d.after) for d in down] == [(2, 1)]
    # the average crosses 2 within look-back + report + tick of the step, then waits upscale_delay_s
    assert 30 + 5 <= up[0].t_s <= 30 + 5 + 2 + 0.5 + 0.2
    assert res.time_to_replicas(2, after=up[0].t_s) == pytest.approx(START_S)
    assert 60 + 10 <= down[0].t_s <= 60 + 10 + 2 + 0.5 + 0.2
    after = res.counts_at(down[0].t_s + sim.DRAIN_GRACE_S + 0.2)
    assert (after.target, after.running, after.stopping) == (1, 1, 0)  # drained and gone
    assert res.summary.outcomes["ok"] == res.summary.requests  # nothing lost on the way down


def test_panic_scales_at_once():
    # a jump to 50/s at 1 replica: demand 5 >= 2 x capacity, scale-up does not wait 5 s
    res = sim.simulate(sim.arrivals_from_rates([(10, 5), (20, 50)]), settings())
    first = decisions(res)[0]
    assert first.reason == "panic" and 10 <= first.t_s <= 10.7


def test_fast_path_settings_pass_through_to_the_policy():
    # the same jump with panic_threshold above the jump: no fast path, scale-up waits its delay
    res = sim.simulate(sim.arrivals_from_rates([(10, 5), (20, 50)]), settings(ac=dict(panic_threshold=20)))
    assert "panic" not in {d.reason for d in decisions(res)}


def test_scale_to_zero_and_a_request_at_zero_waits_the_start_time():
    s = settings(service=1.0, ac=dict(min_replicas=0, initial_replicas=1, downscale_delay_s=2,
                                      downscale_to_zero_delay_s=5), duration_s=45)
    res = sim.simulate([0.0, 0.5, 1.0, 30.0], s)
    to_zero = decisions(res, "to_zero")
    # idle from 2 s: the average is zero within a report and the look-back, then downscale_to_zero_delay_s
    assert 2 + 5 <= to_zero[0].t_s <= 2 + 0.5 + 2 + 5 + 0.2
    assert res.counts_at(20).running == 0 and res.counts_at(20).target == 0
    last = res.requests[-1]
    assert last.outcome == "ok" and last.latency_s == pytest.approx(START_S + 1.0)  # woken at once, no tick wait
    assert decisions(res, "from_zero")[0].t_s == pytest.approx(30.0)
    assert len(to_zero) == 2 and to_zero[1].t_s > 30 + START_S + 1 + 5  # and back to zero after it
    assert res.summary.replica_seconds < 25  # the stretches at zero cost nothing


def test_discovery_time_delays_routing_not_the_running_count():
    s = settings(ac=dict(min_replicas=0, initial_replicas=0), discovery_time=0.7, overhead_s=0.005, duration_s=10)
    res = sim.simulate([1.0], s)
    assert res.counts_at(1 + START_S + 0.01).running == 1  # RUNNING in the status API ...
    assert res.requests[0].queued_s == pytest.approx(START_S + 0.7)  # ... routed to 0.7 s later
    assert res.requests[0].latency_s == pytest.approx(START_S + 0.7 + 0.1 + 0.005)


def test_queue_bound_rejects():
    s = settings(service=1.0, max_ongoing_requests=1, max_queued_requests=5, ac=dict(max_replicas=1))
    res = sim.simulate([0.0] * 20, s)
    o = res.summary.outcomes
    assert (o["ok"], o["rejected"]) == (6, 14)
    assert res.timeline[0].rejected == 14 and res.timeline[0].arrivals == 20
    assert [round(r.latency_s, 6) for r in res.requests if r.outcome == "ok"] == [1, 2, 3, 4, 5, 6]


def test_no_replica_timeout_and_held_limit():
    s = settings(ac=dict(min_replicas=0, initial_replicas=0), replica_start_time=50.0, no_replica_timeout_s=3,
                 duration_s=7)
    res = sim.simulate([0.0, 1.0, 5.0], s)
    assert [r.outcome for r in res.requests] == ["no_replica", "no_replica", "unfinished"]
    assert res.requests[0].latency_s == pytest.approx(3.0)
    res = sim.simulate([0.0] * (sim.HELD_AT_ZERO_MAX + 1), s)  # max_queued_requests=-1 still holds only so many
    assert res.summary.outcomes["rejected"] == 1


def test_request_timeout_frees_the_slot():
    s = settings(service=10.0, max_ongoing_requests=1, ac=dict(max_replicas=1), request_timeout_s=2)
    res = sim.simulate([0.0, 0.5], s)
    assert [r.outcome for r in res.requests] == ["timeout", "timeout"]
    s = settings(service=1.0, max_ongoing_requests=1, ac=dict(max_replicas=1), request_timeout_s=1.5)
    res = sim.simulate([0.0, 0.1, 0.2], s)
    assert [r.outcome for r in res.requests] == ["ok", "timeout", "timeout"]


def test_same_seed_same_result_other_seed_other_result():
    s = settings(service={"kind": "lognormal", "median_s": 0.08, "sigma": 0.6},
                 replica_start_time={"kind": "samples", "samples_s": [1.0, 2.0, 4.0]})
    arrivals = sim.arrivals_from_rates([(20, 10), (40, 60), (20, 10)], poisson=True, seed=1)
    a, b = sim.simulate(arrivals, s), sim.simulate(arrivals, s)
    assert a.to_dict(requests=True) == b.to_dict(requests=True)
    c = sim.simulate(arrivals, s.model_copy(update={"seed": 1}))
    assert [r.latency_s for r in c.requests] != [r.latency_s for r in a.requests]


def test_a_killed_replica_is_replaced():
    s = settings(ac=dict(min_replicas=2, max_replicas=2), replica_failures_s=[10.0], duration_s=30)
    res = sim.simulate(sim.arrivals_from_rates([(30, 20)]), s)
    assert res.counts_at(10.05).running == 1
    assert res.counts_at(10 + sim.LOOP_PERIOD_S + START_S + 0.01).running == 2  # next tick starts one
    assert res.summary.replicas_killed == 1 and res.summary.replicas_started == 1
    assert 0 < res.summary.outcomes["replica_died"] <= 2  # what it held at 20/s x 0.1 s
    again = sim.simulate(sim.arrivals_from_rates([(30, 20)]), s.model_copy(update={"idempotent": True}))
    assert again.summary.outcomes["replica_died"] == 0 and again.summary.outcomes["ok"] >= 599
    assert any(r.retries for r in again.requests)


def test_kill_with_nothing_running_is_skipped():
    s = settings(ac=dict(min_replicas=0, initial_replicas=0), replica_failures_s=[1.0], duration_s=5)
    res = sim.simulate([], s)
    assert res.summary.kills_skipped == 1 and res.summary.requests == 0 and res.summary.availability is None


def test_bad_settings_name_the_field_and_value():
    with pytest.raises(ValidationError) as e:
        settings(max_ongoing_requests=0)
    assert "max_ongoing_requests" in str(e.value) and "input_value=0" in str(e.value)
    with pytest.raises(ConfigError) as ce:
        sim.load_settings({"autoscaling_config": {"max_replicas": -2}, "service_time": 0.1})
    assert ce.value.field == "autoscaling_config.max_replicas" and ce.value.value == -2
    with pytest.raises(ConfigError) as ce:
        sim.load_settings({"autoscaling_config": {}, "service_time": {"kind": "lognormal", "median_s": 0}})
    assert ce.value.field == "service_time.lognormal.median_s" and "greater than 0" in str(ce.value)
    with pytest.raises(ConfigError) as ce:
        sim.load_settings({"autoscaling_config": {}, "service_time": 0.1, "replica_failures_s": [3, -1]})
    assert ce.value.field == "replica_failures_s.1" and ce.value.value == -1
    with pytest.raises(ConfigError) as ce:
        sim.load_settings({"autoscaling_config": {}, "service_time": 0.1, "max_replicas": 3})
    assert ce.value.field == "max_replicas"  # belongs under autoscaling_config: extra keys are refused
    with pytest.raises(ConfigError) as ce:
        sim.load_settings({"autoscaling_config": {}, "service_time": 0.1, "demand_fresh_s": 0.4})
    assert "demand_fresh_s=0.4" in str(ce.value) and "report_interval_s=0.5" in str(ce.value)
    with pytest.raises(ConfigError) as ce:
        sim.simulate([0.0, math.nan], settings())
    assert ce.value.field == "arrivals[1]"


def test_speed_of_a_ten_minute_trace_at_100_per_s():
    s = settings(service={"kind": "lognormal", "median_s": 0.05}, request_timeout_s=5,
                 ac=dict(upscale_delay_s=10, downscale_delay_s=30))
    arrivals = sim.arrivals_from_rates([(600, 100)])
    started = time.perf_counter()
    res = sim.simulate(arrivals, s)
    print(f"600 s x 100 req/s: {len(arrivals)} requests simulated in {time.perf_counter() - started:.2f} s")
    assert res.summary.requests == 60000  # no timing asserted


# -- serve-core simulate ------------------------------------------------------------------

SET = ["--set", "autoscaling_config.max_replicas=5", "--set", "autoscaling_config.target_ongoing_requests=1",
       "--set", "service_time=0.1", "--set", "max_ongoing_requests=2"]


def test_cli_simulate_shape_json(capsys):
    assert cli.main(["simulate", "--shape", "step", "--rate", "10", "--duration", "40", "--at", "10",
                     "--to-rate", "40", "--json", *SET]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["requests"] == 10 * 10 + 30 * 40
    assert doc["summary"]["max_replicas"] >= 2 and doc["settings"]["autoscaling_config"]["max_replicas"] == 5
    assert doc["timeline"][0]["t_s"] == 0 and doc["decisions"][0]["reason"] == "panic"


def test_cli_simulate_trace_formats(tmp_path, capsys):
    plain = tmp_path / "t.txt"
    plain.write_text("# recorded\ntimestamp\n100.0\n100.5\n2024-04-05T12:00:00Z\n")
    assert cli.read_arrivals(str(plain)) == [0.0, 0.5, 1712318300.0]
    csv = tmp_path / "t.csv"
    csv.write_text("path,timestamp\n/a,10\n/b,12\n")
    assert cli.read_arrivals(str(csv), speedup=2) == [0.0, 1.0]
    records = tmp_path / "records.jsonl"
    records.write_text("\n".join(json.dumps({"seq": i, "intended": 1700000000 + i / 4, "status": 200}) for i in range(8))
                       + '\n{"seq": 8, "inten')  # a torn last line, as a killed loadgen leaves
    assert cli.read_arrivals(str(records)) == [i / 4 for i in range(8)]
    assert cli.main(["simulate", "--trace", str(records), *SET]) == 0
    out = capsys.readouterr().out
    assert "8 requests" in out and "8 ok" in out and "p99" in out


def test_cli_simulate_errors_name_the_field(tmp_path, capsys):
    assert cli.main(["simulate", "--shape", "constant", "--rate", "10", "--duration", "5",
                     "--set", "service_time=0.1", "--set", "autoscaling_config.min_replicas=9"]) == 2
    assert "min_replicas=9 is above max_replicas=1" in capsys.readouterr().err
    assert cli.main(["simulate", "--shape", "step", "--rate", "10", "--duration", "5", *SET]) == 2
    assert "--to-rate" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("1.0\nsoon\n")
    assert cli.main(["simulate", "--trace", str(bad), *SET]) == 2
    assert f"{bad} line 2='soon'" in capsys.readouterr().err
    assert cli.main(["simulate", *SET]) == 2
    assert "--trace/--shape" in capsys.readouterr().err
