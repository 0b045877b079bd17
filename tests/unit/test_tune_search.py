"""The search over the simulator: deterministic, complete for a grid, right about the SLOs."""

import pytest

from chaos.slo.spec import Availability, Latency
from tests.unit.test_tune_sweep import doc
from tune.search import (
    candidates,
    evaluate,
    figures_of,
    fixed_peak_replicas,
    peak_rate,
    ranked,
)
from tune.sweep import SweepError, parse_sweep


def test_grid_is_every_combination_in_order():
    s = parse_sweep(doc())
    cands = candidates(s)
    assert len(cands) == 3 * 2
    assert [c.values for c in cands][:2] == [{"target_ongoing_requests": 1, "upscale_delay_s": 0},
                                             {"target_ongoing_requests": 1, "upscale_delay_s": 2}]
    assert len({c.key() for c in cands}) == 6


def test_grid_too_large_is_an_error_naming_the_fix():
    s = parse_sweep(doc(space__downscale_delay_s={"min": 0, "max": 100, "step": 1}, search={"max_candidates": 100}))
    with pytest.raises(SweepError, match="kind: random"):
        candidates(s)


def test_random_search_is_deterministic_by_seed():
    d = doc(space={"target_ongoing_requests": {"min": 0.5, "max": 4}, "upscale_delay_s": {"min": 0, "max": 5},
                   "max_ongoing_requests": {"min": 1, "max": 8}},
            search={"kind": "random", "samples": 12, "seed": 7})
    a, b = candidates(parse_sweep(d)), candidates(parse_sweep(d))
    assert [c.values for c in a] == [c.values for c in b] and len(a) == 12
    assert all(float(c.values["max_ongoing_requests"]).is_integer() for c in a)
    assert all(0.5 <= c.values["target_ongoing_requests"] <= 4 for c in a)
    d["search"]["seed"] = 8
    assert [c.values for c in candidates(parse_sweep(d))] != [c.values for c in a]


def test_random_search_over_a_small_space_stops_without_duplicates():
    d = doc(space={"upscale_delay_s": [0, 1, 2]}, search={"kind": "random", "samples": 10})
    cands = candidates(parse_sweep(d))
    assert sorted(c.values["upscale_delay_s"] for c in cands) == [0, 1, 2]


def test_evaluate_is_deterministic_and_judges_the_slos():
    d = doc(load={"profile": {"kind": "step", "rate": 5, "to_rate": 40, "at_s": 5, "duration_s": 15}},
            base={"autoscaling_config": {"max_replicas": 6, "look_back_period_s": 2}, "max_ongoing_requests": 2},
            model={"service_time": 0.1, "replica_start_time": 1})
    s = parse_sweep(d)
    a, b = evaluate(s), evaluate(s)
    assert [e.figures for e in a] == [e.figures for e in b]
    for e in a:
        f = e.figures
        assert f.requests == 25 + 400 and f.replica_seconds > 0
        assert f.slos["availability"] == (f.availability >= 0.99)
        assert f.slos["latency"] == (f.p99_s * 1000 < 500)
    # a lower target buys more replicas
    by = {(e.candidate.values["target_ongoing_requests"], e.candidate.values["upscale_delay_s"]): e.figures for e in a}
    assert by[(1, 0)].replica_seconds > by[(3, 0)].replica_seconds
    order = ranked(a)
    met = [e for e in order if e.figures.all_met]
    assert order[:len(met)] == met
    assert [e.figures.replica_seconds for e in met] == sorted(e.figures.replica_seconds for e in met)


def test_figures_attainment_and_slo_verdicts():
    slos = [Availability(objective=0.9), Latency(percentile=50, threshold_ms=100)]
    f = figures_of(requests=10, ok_latencies=[0.01] * 6 + [0.2] * 3, settled=10, slos=slos, replica_seconds=10,
                   running_replica_seconds=8, max_replicas=2, num_cpus=0.5, num_gpus=1)
    assert f.availability == 0.9 and f.attainment == 0.6
    assert f.slos == {"availability": True, "latency": True} and f.all_met
    assert (f.cpu_seconds, f.gpu_seconds) == (5, 10)
    f = figures_of(requests=0, ok_latencies=[], settled=0, slos=slos, replica_seconds=0, running_replica_seconds=0,
                   max_replicas=0, num_cpus=1, num_gpus=0)
    assert f.slos == {"availability": None, "latency": None} and not f.all_met


def test_peak_sizing():
    assert peak_rate([0.1, 0.2, 1.5, 1.6, 1.7]) == 3
    assert fixed_peak_replicas(60, 0.075, 2) == 3  # 4.5 ongoing at 2 per replica
    assert fixed_peak_replicas(0, 0.1, 1) == 1
