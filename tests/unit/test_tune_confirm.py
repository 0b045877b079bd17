"""Real runs, without a cluster: the generated serve config and experiment, the measured
figures, the simulator-to-real comparison math, and a sweep driven with a fake runner."""

import json
import math
import os

import pytest

from chaos.spec.loading import parse_experiment
from serve_core.config_file import ServeConfig
from tests.unit.test_tune_sweep import doc
from tune import confirm as cf
from tune.search import Figures
from tune.sweep import load_sweep, parse_sweep
from tune.tuner import run_sweep


def sweep(**changes):
    return parse_sweep(doc(**changes))


def test_serve_config_of_a_candidate_is_a_valid_serve_core_config():
    s = sweep()
    setting = cf.setting_of(s, "c1", {"target_ongoing_requests": 2, "max_ongoing_requests": 3, "panic_threshold": 3})
    cfg = ServeConfig.model_validate(cf.serve_config(s, setting))
    dep = cfg.applications[0].deployments[0]
    assert dep.name == "TuneWork" and dep.max_ongoing_requests == 3 and dep.num_replicas == "auto"
    assert dep.autoscaling_config.target_ongoing_requests == 2 and dep.autoscaling_config.panic_threshold == 3
    assert dep.autoscaling_config.max_replicas == 4


def test_ray_serve_gets_no_serve_core_only_field_and_its_builder():
    s = sweep()
    setting = cf.setting_of(s, "c1", {"panic_threshold": 3, "panic_window_s": 5}, backend="ray_serve")
    app = cf.serve_config(s, setting)["applications"][0]
    assert app["import_path"] == "tune.app:build_ray_serve"
    assert not {"panic_threshold", "panic_window_s"} & set(app["deployments"][0]["autoscaling_config"])


def test_fixed_count_setting():
    s = sweep()
    dep = cf.serve_config(s, cf.Setting("fixed_3", "serve_core", None, 2, 3))["applications"][0]["deployments"][0]
    assert dep == {"name": "TuneWork", "num_replicas": 3, "max_ongoing_requests": 2}


def test_experiment_doc_is_a_valid_chaos_experiment():
    s = sweep(faults=[{"action": "kill-replica", "target": {"deployment": "TuneWork"}, "schedule": {"at_s": 5}}],
              load={"profile": {"kind": "constant", "rate": 10, "duration_s": 20}})
    e = parse_experiment(cf.experiment_doc(s, cf.setting_of(s, "c0", {}), "/tmp/x.yaml", 20))
    assert e.application.config == "/tmp/x.yaml" and e.run_s == 20
    assert e.steady_state.judge == ["whole"] and [f.action for f in e.method] == ["kill-replica"]
    assert e.name == "tune-t-c0"


def test_replica_seconds_integrates_the_gauge():
    entry = {"series": [{"labels": {"deployment": "TuneWork"}, "points": [[0, 1], [10, 3], [20, None], [30, 2]]},
                        {"labels": {"deployment": "Other"}, "points": [[0, 100]]}]}
    # 1 from 0 to 10, 3 from 10 to 30 (the missing point does not break the step), 2 from 30 to 40
    assert cf.replica_seconds(entry, "TuneWork", 0, 40) == 10 + 60 + 20
    assert cf.replica_seconds({"series": [], "error": "down"}, "TuneWork", 0, 1) is None
    assert cf.replica_seconds(None, "TuneWork", 0, 1) is None


def test_measured_from_client_records():
    s = sweep()
    recs = [{"started": 1.0, "ok": True, "latency_s": 0.1}] * 8 + [{"started": 1.0, "ok": False, "latency_s": 5}] + \
           [{"started": None, "ok": False, "latency_s": None}]
    f = cf.measured(recs, s, 50.0, 2)
    assert f.requests == 10 and f.ok == 8 and f.availability == pytest.approx(8 / 9)
    assert f.p99_s == 0.1 and f.running_replica_seconds == 50 and f.slos["availability"] is False


def figs(rs, p99, avail, att):
    return Figures(100, 100, avail, p99, p99, p99, att, rs, rs, rs, 0, 2, {})


def test_prediction_error_math():
    e = cf.prediction_error(figs(120, 0.2, 1.0, 0.99), figs(100, 0.4, 0.98, 0.97))
    assert e["replica_seconds_ratio"] == pytest.approx(1.2) and e["p99_ratio"] == pytest.approx(0.5)
    assert e["availability_diff"] == pytest.approx(0.02) and e["attainment_diff"] == pytest.approx(0.02)
    e = cf.prediction_error(figs(120, None, None, None), figs(math.nan, 0.4, 1, 1))
    assert e["replica_seconds_ratio"] is None and e["p99_ratio"] is None and e["availability_diff"] is None
    assert cf.mean_abs_log_error([2.0, 0.5, None]) == pytest.approx(math.log(2))
    assert cf.mean_abs_log_error([None]) is None


def fake_runner(tmp_path, verdicts):
    """Writes the records a real run would (every scheduled request, 50 ms) and a replica gauge."""
    calls = []

    def run(exp_doc):
        calls.append(exp_doc)
        d = tmp_path / f"run{len(calls)}"
        (d / "load").mkdir(parents=True)
        n = int(exp_doc["load"]["profile"]["rate"] * exp_doc["load"]["profile"]["duration_s"])
        with open(d / "load" / "records.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"seq": i, "started": 1.0, "ok": True, "latency_s": 0.05}) + "\n")
        entry = {"series": [{"labels": {"deployment": "TuneWork"}, "points": [[0, 1], [10, 1]]}], "span": (0, 10)}
        return verdicts[min(len(calls) - 1, len(verdicts) - 1)], [], str(d), entry

    return run, calls


def test_run_sweep_with_a_fake_runner_confirms_and_compares(tmp_path):
    s = sweep(confirm={"top": 2, "compare": ["serve_core_defaults", "ray_serve_defaults", "fixed_peak"]})
    runner, calls = fake_runner(tmp_path, ["failed", "passed", "passed"])
    doc_ = run_sweep(s, runner=runner, work_dir=str(tmp_path / "work"), log=lambda m: None)
    assert len(doc_["real_runs"]) == 2 and len(calls) == 5
    assert [c["backend"] for c in calls] == ["serve_core", "serve_core", "serve_core", "ray_serve", "serve_core"]
    first, second = doc_["real_runs"]
    assert first["verdict"] == "failed" and second["verdict"] == "passed"
    assert second["measured"]["replica_seconds"] == 10 and second["error_vs_real"]["replica_seconds_ratio"] > 0
    rec = doc_["recommendation"]
    assert rec["label"] == second["label"] and rec["measured"] == second["measured"]
    ServeConfig.model_validate(rec["config"])
    assert all(c.get("measured") for c in doc_["comparisons"])
    assert doc_["simulator_error"]["replica_seconds"] is not None
    # the generated serve configs are there for each real run
    assert len(os.listdir(tmp_path / "work")) == 5


def test_candidates_run_on_the_backend_asked_for(tmp_path):
    runner, calls = fake_runner(tmp_path, ["passed"])
    d = run_sweep(sweep(confirm={"top": 1}), runner=runner, work_dir=str(tmp_path / "w"), log=lambda m: None,
                  backend="ray_serve")
    assert [c["backend"] for c in calls] == ["ray_serve"] and d["real_runs"][0]["backend"] == "ray_serve"
    assert "panic_threshold" not in (tmp_path / "w" / "c0-ray_serve.serve.yaml").read_text()


def test_run_sweep_without_runner_recommends_from_the_simulator():
    s = load_sweep("tune/sweeps/ci_small.yaml")
    d = run_sweep(s, runner=None, log=lambda m: None)
    assert d["candidates"] == 8 and d["real_runs"] == []
    assert d["recommendation"] and "not confirmed" in d["recommendation"]["basis"]
