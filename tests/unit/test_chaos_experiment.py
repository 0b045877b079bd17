"""The experiment schema: every ready experiment validates; every error names the field
path, the bad value and the fix (and, for a file, the line)."""

import glob
import os

import pytest

from chaos.errors import ExperimentError
from chaos.spec.experiment import Experiment
from chaos.spec.loading import (
    apply_overrides,
    load_experiment,
    parse_experiment,
    parse_experiment_text,
)

pytestmark = pytest.mark.unit

EXPERIMENTS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "chaos", "experiments", "*.yaml")))


def base(**changes):
    doc = {
        "name": "t",
        "seed": 1,
        "application": {"import_path": "tests.e2e.fault_app:app"},
        "load": {"profile": {"kind": "constant", "rate": 100, "duration_s": 60}},
        "steady_state": {
            "before_s": 10, "during_s": 40, "after_s": 10,
            "slos": [{"kind": "availability", "objective": 0.999},
                     {"kind": "latency", "percentile": 99, "threshold_ms": 100}],
        },
        "method": [{"action": "kill-replica", "target": {"node": "any", "deployment": "Work"}, "schedule": {"at_s": 20}}],
    }
    doc.update(changes)
    return doc


def fault(**f):
    return {"action": "kill-replica", "schedule": {"at_s": 20}, **f}


def error_of(doc, **overrides) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(doc, **overrides)
    return info.value


# -- the ready experiments ---------------------------------------------------------------------


def test_there_are_ready_experiments():
    names = {os.path.basename(p) for p in EXPERIMENTS}
    assert {"replica_kills.yaml", "controller_kill.yaml", "gcs_kill_head_restart.yaml", "worker_node_loss.yaml",
            "network_partition.yaml", "mixed_soak.yaml"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=os.path.basename)
@pytest.mark.parametrize("backend", ["serve_core", "ray_serve"])
def test_every_ready_experiment_validates_for_both_backends(path, backend):
    exp = load_experiment(path, backend=backend)
    assert exp.backend == backend
    assert exp.method, "a ready experiment injects faults"
    assert {s.kind for s in exp.steady_state.slos} >= {"availability", "latency", "recovery"}
    profile = exp.load.profile
    # The fault app's experiments run at 100-200 requests/s; the demo's torch pipeline at less, and
    # the compose CI smoke at 50 (containers, Locust and the chaos runner on two shared cores).
    # The production patterns' experiments run lighter apps at 40-60.
    low = {"demo": 5, "compose_smoke": 50, "compose_faults": 30, "rollout_replica_kill": 60,
           "canary_rollback": 40}.get(exp.name, 100)
    assert profile.kind == "constant" and low <= profile.rate <= 200
    assert exp.run_s <= {"mixed_soak": 600, "soak_hour": 3600}.get(exp.name, 150)
    assert exp.abort, "a ready experiment has abort conditions"


def test_minimal_document_and_defaults():
    exp = parse_experiment(base())
    assert exp.target.kind == "embedded" and exp.target.name == "default" and exp.target.workers == 2
    assert exp.backend == "serve_core" and exp.application.route == "/" and exp.application.method == "GET"
    assert exp.load.proxies == ["workers"]
    assert exp.run_s == 60 and exp.during == (10, 50)
    assert exp.window("after") == (50, 60) and exp.window("whole") == (0, 60)


# -- overrides ---------------------------------------------------------------------------------


def test_overrides_target_backend_seed():
    exp = parse_experiment(base(target={"kind": "embedded", "name": "a", "workers": 3}),
                           target="embedded:other", backend="ray_serve", seed=42)
    assert exp.target.name == "other" and exp.target.workers == 3  # the rest of the target is kept
    assert exp.backend == "ray_serve" and exp.seed == 42
    again = apply_overrides(exp, seed=7)
    assert again.seed == 7 and again.target.name == "other" and again.backend == "ray_serve"


def test_bad_target_override_names_the_form():
    e = error_of(base(), target="kubernetes:x")
    assert e.path == "--target" and "embedded:CLUSTER" in e.fix


def test_bad_backend_override_lists_the_backends():
    e = error_of(base(), backend="torchserve")
    assert e.path == "--backend" and "serve_core" in e.fix and "ray_serve" in e.fix


def test_backend_without_import_path():
    doc = base(application={"import_paths": {"serve_core": "tests.e2e.fault_app:app"}})
    e = error_of(doc, backend="ray_serve")
    assert e.path == "application.import_paths.ray_serve" and "add an import path or a config" in e.fix
    # A config per backend is enough.
    doc = base(application={"configs": {"serve_core": "a.yaml", "ray_serve": "b.yaml"}})
    for backend in ("serve_core", "ray_serve"):
        assert parse_experiment(doc, backend=backend).application.deploys(backend).endswith(".yaml")


# -- field errors: path, value, fix -----------------------------------------------------------


def test_missing_field_names_it_and_what_it_is():
    doc = base()
    del doc["load"]
    e = error_of(doc)
    assert e.path == "load" and "add it" in e.fix and "(missing)" in str(e)


def test_unknown_field_suggests_the_close_one():
    doc = base()
    doc["steady_state"]["slos"][1] = {"kind": "latency", "percentile": 99, "thresold_ms": 100}
    e = error_of(doc)
    text = str(e)
    assert "steady_state.slos[1].thresold_ms=100" in text and "did you mean threshold_ms" in text
    assert "steady_state.slos[1].threshold_ms=(missing)" in text


def test_bad_number_names_the_bound():
    doc = base()
    doc["load"]["profile"]["rate"] = -5
    e = error_of(doc)
    assert e.path == "load.profile.rate" and e.value == -5 and "greater than 0" in e.fix


@pytest.mark.parametrize("where", [("load", "profile", "duration_s"), ("steady_state", "after_s"), ("load", "timeout_s")])
def test_infinity_is_refused_where_a_number_is_expected(where):
    doc = base()
    holder = doc
    for key in where[:-1]:
        holder = holder[key]
    holder[where[-1]] = float("inf")  # YAML's .inf: a run that would never end
    e = error_of(doc)
    assert e.path == ".".join(where) and "finite" in e.fix


def test_unknown_profile_kind_lists_the_kinds():
    doc = base()
    doc["load"]["profile"] = {"kind": "sawtooth", "rate": 1, "duration_s": 60}
    e = error_of(doc)
    assert e.path == "load.profile.kind" and e.value == "sawtooth" and "constant" in e.fix


def test_unknown_action_lists_the_actions():
    e = error_of(base(method=[fault(action="explode")]))
    assert e.path == "method[0].action" and e.value == "explode" and "kill-replica" in e.fix


def test_bad_import_path_shows_the_form():
    e = error_of(base(application={"import_path": "tests/e2e/fault_app.py"}))
    assert e.path == "application.import_path" and "module:attribute" in e.fix


def test_bad_route():
    e = error_of(base(application={"import_path": "a:b", "route": "api"}))
    assert e.path == "application.route" and "'/api'" in e.fix


def test_bad_name_for_a_directory():
    e = error_of(base(name="my experiment/1"))
    assert e.path == "name"


def test_negative_seed():
    e = error_of(base(seed=-1))
    assert e.path == "seed" and e.value == -1


# -- cross-field checks ------------------------------------------------------------------------


def test_fault_outside_the_during_window():
    e = error_of(base(method=[fault(schedule={"at_s": 5})]))
    assert e.path == "method[0].schedule.at_s" and e.value == 5
    assert "during window [10, 50)" in e.fix


def test_fault_lasting_past_the_during_window():
    e = error_of(base(method=[{"action": "partition", "target": "w1", "duration_s": 30, "schedule": {"at_s": 40}}]))
    assert e.path == "method[0].duration_s" and e.value == 30 and "until 70s" in e.fix and "shorten" in e.fix


def test_gcs_downtime_counts_as_the_fault_length():
    e = error_of(base(method=[{"action": "kill-gcs", "args": {"down_for_s": 20}, "schedule": {"at_s": 40}}]))
    assert e.path == "method[0].args.down_for_s"


def test_load_shorter_than_the_run():
    doc = base()
    doc["load"]["profile"]["duration_s"] = 30
    e = error_of(doc)
    assert e.path == "load.profile.duration_s" and e.value == 30 and "set it to 60" in e.fix


def test_schedule_needs_exactly_one_kind():
    e = error_of(base(method=[fault(schedule={"at_s": 20, "every_s": 5})]))
    assert e.path == "method[0].schedule" and "exactly one of at_s, every_s or random" in e.fix
    e = error_of(base(method=[fault(schedule={})]))
    assert "exactly one" in e.fix


def test_random_schedule_needs_count_or_rate():
    e = error_of(base(method=[fault(schedule={"random": {"min_gap_s": 3}})]))
    assert e.path == "method[0].schedule.random" and "count" in e.fix and "rate_per_min" in e.fix


def test_random_count_must_fit_with_its_gap():
    e = error_of(base(method=[fault(schedule={"random": {"count": 10, "min_gap_s": 10}})]))
    assert e.path == "method[0].schedule.random.min_gap_s" and "do not fit" in e.fix


def test_every_longer_than_its_window():
    e = error_of(base(method=[fault(schedule={"every_s": 100})]))
    assert e.path == "method[0].schedule.every_s" and "once" in e.fix


def test_node_action_needs_a_node():
    e = error_of(base(method=[{"action": "kill-node", "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].target.node" and "needs a node" in e.fix


def test_unknown_node_suggests_one():
    e = error_of(base(method=[{"action": "kill-node", "target": "w3", "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].target.node" and e.value == "w3" and "head, w1, w2" in e.fix
    e = error_of(base(method=[{"action": "kill-node", "target": "random_worker", "schedule": {"at_s": 20}}]))
    assert "did you mean random-worker" in e.fix


def test_more_workers_make_more_node_names_valid():
    exp = parse_experiment(base(target={"kind": "embedded", "workers": 3},
                                method=[{"action": "kill-node", "target": "w3", "schedule": {"at_s": 20}}]))
    assert exp.method[0].target.node == "w3"


def test_deployment_selector_only_for_kill_replica():
    e = error_of(base(method=[{"action": "kill-proxy", "target": {"node": "w1", "deployment": "Work"},
                               "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].target" and "deployment and app go with kill-replica" in e.fix


def test_cluster_faults_take_no_target():
    e = error_of(base(method=[{"action": "kill-controller", "target": "w1", "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].target" and "remove target" in e.fix


def test_kill_replica_cannot_hit_every_worker():
    e = error_of(base(method=[fault(target="worker")]))
    assert e.path == "method[0].target.node" and "random-worker" in e.fix


def test_arguments_checked_per_action():
    e = error_of(base(method=[{"action": "kill-node", "target": "w1", "args": {"delay_ms": 5},
                               "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].args.delay_ms" and "kill-node takes no args" in e.fix and "netem" in e.fix


def test_partition_mode_is_cut_or_freeze_and_only_for_partition():
    e = error_of(base(method=[{"action": "partition", "target": "w1", "args": {"mode": "pause"},
                               "duration_s": 2, "schedule": {"at_s": 20}}]))
    assert e.path.startswith("method[0].args.mode") and "cut" in e.fix and "freeze" in e.fix
    e = error_of(base(method=[{"action": "kill-node", "target": "w1", "args": {"mode": "freeze"},
                               "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].args.mode" and "goes with partition" in e.fix


def test_netem_needs_loss_or_delay():
    e = error_of(base(method=[{"action": "netem", "target": "w1", "duration_s": 5, "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].args" and "loss_pct" in e.fix


def test_duration_only_where_it_means_something():
    e = error_of(base(method=[fault(duration_s=5)]))
    assert e.path == "method[0].duration_s" and "instantaneous" in e.fix
    e = error_of(base(method=[{"action": "kill-gcs", "duration_s": 5, "schedule": {"at_s": 20}}]))
    assert "args.down_for_s" in e.fix


def test_deploy_needs_an_existing_config_and_no_target():
    e = error_of(base(method=[{"action": "deploy", "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].args.config" and "serve config YAML" in e.fix
    e = error_of(base(method=[{"action": "deploy", "args": {"config": "no/such.yaml"}, "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].args.config" and "no such file" in e.fix
    e = error_of(base(method=[{"action": "deploy", "target": "w1", "args": {"config": "examples/rollout/serve_v2.yaml"},
                               "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].target" and "remove target" in e.fix


def test_cpu_burn_needs_a_duration():
    e = error_of(base(method=[{"action": "cpu-burn", "target": "w1", "schedule": {"at_s": 20}}]))
    assert e.path == "method[0].duration_s" and "cpu-burn needs duration_s" in e.fix


def test_burn_rate_abort_needs_an_objective():
    doc = base(abort=[{"kind": "burn_rate", "above": 14.4}])
    doc["steady_state"]["slos"] = [{"kind": "latency", "percentile": 99, "threshold_ms": 100}]
    e = error_of(doc)
    assert e.path == "abort[0].objective" and "availability SLO" in e.fix


def test_burn_rate_abort_takes_the_availability_objective():
    exp = parse_experiment(base(abort=[{"kind": "burn_rate", "above": 14.4}]))
    assert exp.availability_objective() == 0.999


def test_rollback_selectors():
    e = error_of(base(rollbacks=[{"action": "heal"}]))
    assert e.path == "rollbacks[0].target.node"
    e = error_of(base(rollbacks=[{"action": "redeploy", "target": "w1"}]))
    assert e.path == "rollbacks[0].target" and "no target" in e.fix


def test_load_proxies_must_be_nodes_or_words():
    doc = base()
    doc["load"]["proxies"] = ["head", "w9"]
    e = error_of(doc)
    assert e.path == "load.proxies[1]" and e.value == "w9"


def test_slos_the_backend_cannot_evaluate():
    doc = base()
    doc["steady_state"]["slos"] = [{"kind": "availability", "objective": 0.99},
                                   {"kind": "availability", "objective": 0.999}]
    e = error_of(doc)
    assert e.path == "steady_state.slos" and "distinct name" in e.fix


def test_many_problems_are_all_listed():
    doc = base(seed=-1, method=[fault(schedule={"at_s": 5})])
    e = error_of(doc)
    assert len(e.problems) == 1  # field errors first: cross-field checks need a valid document
    doc = base(method=[fault(schedule={"at_s": 5}), {"action": "kill-node", "target": "w7", "schedule": {"at_s": 20}}])
    e = error_of(doc)
    assert [p.path for p in e.problems] == ["method[0].schedule.at_s", "method[1].target.node"]
    assert str(e).startswith("2 problems:")


# -- files -------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ExperimentError) as info:
        load_experiment(str(tmp_path / "nope.yaml"))
    assert "no such file" in str(info.value) and "chaos/experiments" in str(info.value)


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nload:\n  profile: {kind: constant\n  workers: 2\n")
    with pytest.raises(ExperimentError) as info:
        load_experiment(str(path))
    text = str(info.value)
    assert str(path) in text and "line 4" in text and "fix the syntax" in text


def test_validation_errors_name_the_line():
    text = """name: t
application: {import_path: tests.e2e.fault_app:app}
load:
  profile: {kind: constant, rate: 100, duration_s: 60}
steady_state:
  before_s: 10
  during_s: 40
  after_s: 10
  slos:
    - {kind: availability, objective: 0.999}
method:
  - action: kill-node
    target: w5
    schedule: {at_s: 20}
"""
    with pytest.raises(ExperimentError) as info:
        parse_experiment_text(text, "x.yaml")
    assert str(info.value).startswith("x.yaml: line 13: invalid method[0].target.node='w5'")


def test_not_a_mapping():
    with pytest.raises(ExperimentError) as info:
        parse_experiment_text("- a\n- b\n", "x.yaml")
    assert "a mapping" in str(info.value)


def test_selector_shorthand():
    exp = parse_experiment(base(method=[fault(target="node:w1, deployment:Work, app:default")]))
    sel = exp.method[0].target
    assert (sel.node, sel.deployment, sel.app) == ("w1", "Work", "default")
    e = error_of(base(method=[fault(target="replica:3")]))
    assert e.path == "method[0].target" and "node:NAME" in e.fix


def test_experiment_round_trips_through_json():
    exp = parse_experiment(base())
    again = parse_experiment(exp.model_dump(mode="json"))
    assert again == exp
    assert isinstance(again, Experiment)


def test_one_payload_source_only():
    e = error_of(base(application={"import_path": "a:b", "payload": {"x": 1}, "payload_file": "body.json"}))
    assert e.path == "application" and "not payload and payload_file" in e.fix


def test_payload_name_must_be_known_to_the_load_generator():
    exp = parse_experiment(base(application={"import_path": "a:b", "payload_name": "example:sklearn"}))
    assert exp.application.payload_name == "example:sklearn"
    e = error_of(base(application={"import_path": "a:b", "payload_name": "example:nope"}))
    assert e.path == "application.payload_name" and e.value == "example:nope" and "known:" in e.fix


def test_held_faults_on_a_period_shorter_than_themselves():
    e = error_of(base(method=[{"action": "partition", "target": "w1", "duration_s": 10,
                               "schedule": {"every_s": 5, "end_s": 30}}]))
    assert e.path == "method[0].schedule.every_s" and "lengthen every_s" in e.fix


def test_random_held_faults_must_fit_without_overlapping():
    e = error_of(base(method=[{"action": "partition", "target": "w1", "duration_s": 10,
                               "schedule": {"random": {"count": 5}}}]))
    assert e.path == "method[0].schedule.random.count" and "never overlap" in e.fix


def test_the_readme_example_validates():
    import re

    readme = os.path.join(os.path.dirname(__file__), "..", "..", "chaos", "README.md")
    (example,) = re.findall(r"```yaml\n(.*?)```", open(readme).read(), re.S)
    exp = parse_experiment_text(example, "README")
    assert [f.action for f in exp.method] == ["kill-replica", "kill-gcs", "partition"]
