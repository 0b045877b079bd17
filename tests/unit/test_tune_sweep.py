"""The sweep document: what a bad one says (the field, the value, the fix)."""

import copy

import pytest
import yaml

from tune.sweep import Range, SweepError, load_sweep, parse_sweep

GOOD = {
    "name": "t",
    "application": {"import_path": "tune.app:build", "deployment": "TuneWork"},
    "load": {"profile": {"kind": "constant", "rate": 10, "duration_s": 10}},
    "slos": [{"kind": "availability", "objective": 0.99}, {"kind": "latency", "percentile": 99, "threshold_ms": 500}],
    "base": {"autoscaling_config": {"max_replicas": 4}, "max_ongoing_requests": 2},
    "model": {"service_time": 0.05},
    "space": {"target_ongoing_requests": {"min": 1, "max": 3, "step": 1}, "upscale_delay_s": [0, 2]},
}


def doc(**changes):
    d = copy.deepcopy(GOOD)
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return d


def error(d):
    with pytest.raises(SweepError) as e:
        parse_sweep(d, "s.yaml")
    return e.value


def test_good_sweep_parses_and_its_settings_validate():
    s = parse_sweep(GOOD)
    assert set(s.space.ranges()) == {"target_ongoing_requests", "upscale_delay_s"}
    st = s.settings({"target_ongoing_requests": 2, "max_ongoing_requests": 3})
    assert st.autoscaling_config.target_ongoing_requests == 2 and st.max_ongoing_requests == 3
    assert st.autoscaling_config.max_replicas == 4 and st.request_timeout_s == 5.0


def test_ready_sweeps_are_valid():
    for path in ("tune/sweeps/bursty.yaml", "tune/sweeps/ci_small.yaml"):
        s = load_sweep(path)
        assert s.space.ranges()


def test_min_above_max_names_the_field():
    e = error(doc(space__target_ongoing_requests={"min": 4, "max": 1}))
    assert "space.target_ongoing_requests" in e.field and "min=4 is above max=1" in e.fix


def test_unknown_field_is_named():
    e = error(doc(space__target_ongoing={"min": 1, "max": 2}))
    assert e.field.endswith("space.target_ongoing") and "unknown field" in e.fix
    e = error(doc(searhc={"kind": "grid"}))
    assert e.field.endswith("searhc")


def test_bad_ranges():
    assert "min and max" in error(doc(space__upscale_delay_s={"min": 1})).fix
    assert "not both" in error(doc(space__upscale_delay_s={"values": [1], "min": 0, "max": 2})).fix
    assert "whole numbers" in error(doc(space__max_ongoing_requests=[1, 2.5])).fix
    assert "above 1" in error(doc(space__panic_threshold=[1, 2])).fix
    e = error(doc(space__upscale_delay_s=[-1, 2]))
    assert "upscale_delay_s" in e.field


def test_a_range_end_that_makes_bad_settings_is_named():
    # target_ongoing_requests 0 is not a valid autoscaling_config value
    e = error(doc(space__target_ongoing_requests=[0, 1]))
    assert "target_ongoing_requests" in e.field and e.value == 0


def test_base_and_model_errors_name_their_field():
    e = error(doc(base__autoscaling_config={"max_replicas": 0}))
    assert e.field == "s.yaml: base.autoscaling_config.max_replicas"
    assert "unknown key 'speed'" in error(doc(model__speed=1)).fix
    assert "service_time" in error(doc(model={"overhead_s": 0.01})).fix
    e = error(doc(model__service_time={"kind": "lognormal", "median_s": -1}))
    assert e.field.startswith("s.yaml: model.service_time")


def test_slos_need_one_the_simulator_judges():
    e = error(doc(slos=[{"kind": "recovery", "max_s": 5}]))
    assert "availability or latency" in e.fix


def test_grid_values():
    assert Range(min=1, max=2, step=0.5).grid() == [1, 1.5, 2]
    assert Range(min=0, max=10, step=4).grid() == [0, 4, 8, 10]
    assert Range.model_validate(3).grid() == [3]


def test_bad_file(tmp_path):
    with pytest.raises(SweepError, match="no such file"):
        load_sweep(str(tmp_path / "missing.yaml"))
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed")
    with pytest.raises(SweepError, match="YAML"):
        load_sweep(str(p))
    p.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(SweepError, match="mapping"):
        load_sweep(str(p))


def test_trace_path_is_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "t.txt").write_text("0\n0.5\n1\n")
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc(load={"profile": {"kind": "trace", "path": "t.txt"}})))
    s = load_sweep(str(p))
    assert s.load.profile.path == str(tmp_path / "t.txt")


def test_validate_cli_exit_codes(tmp_path, capsys):
    from tune.__main__ import main

    assert main(["validate", "tune/sweeps/ci_small.yaml"]) == 0
    assert "8 settings" in capsys.readouterr().out
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc(space__min_replicas={"min": 3, "max": 1})))
    assert main(["validate", str(p)]) == 3
    assert "space.min_replicas" in capsys.readouterr().err


def test_swept_min_replicas_above_max_replicas_is_named():
    e = error(doc(space__min_replicas=[1, 6]))
    assert "base.autoscaling_config" in e.field and "min_replicas=6 is above max_replicas=4" in e.fix
