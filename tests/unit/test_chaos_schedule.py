"""Chaos scheduling: pure, deterministic for a seed, every schedule kind, selectors resolved
against fake snapshots."""

import pytest

from chaos.spec.loading import parse_experiment
from chaos.spec.schedule import DeploymentInfo, NodeInfo, ScheduleError, Snapshot, plan, plan_rollbacks

pytestmark = pytest.mark.unit

SNAP = Snapshot(
    (NodeInfo("head", "head"), NodeInfo("w1", "worker"), NodeInfo("w2", "worker"), NodeInfo("w3", "worker")),
    (DeploymentInfo("default", "Work", ("w1", "w3")), DeploymentInfo("other", "Model", ("w2",))),
)


def experiment(method, seed=1, rollbacks=(), workers=3):
    return parse_experiment({
        "name": "t", "seed": seed,
        "target": {"kind": "embedded", "workers": workers},
        "application": {"import_path": "tests.e2e.fault_app:app"},
        "load": {"profile": {"kind": "constant", "rate": 100, "duration_s": 120}},
        "steady_state": {"before_s": 10, "during_s": 100, "after_s": 10,
                         "slos": [{"kind": "availability", "objective": 0.999}]},
        "method": list(method), "rollbacks": list(rollbacks),
    })


def at(action, t, **kw):
    return {"action": action, "schedule": {"at_s": t}, **kw}


def test_at_schedule_and_order():
    exp = experiment([at("kill-controller", 60), at("kill-replica", 20), at("kill-gcs", 40, args={"down_for_s": 7})])
    p = plan(exp, SNAP)
    assert [(f.at_s, f.action) for f in p] == [(20, "kill-replica"), (40, "kill-gcs"), (60, "kill-controller")]
    assert p[1].args == {"down_for_s": 7} and p[1].node is None and p[1].expected_s == 7


def test_kill_gcs_gets_its_default_downtime():
    (f,) = plan(experiment([at("kill-gcs", 40)]), SNAP)
    assert f.args == {"down_for_s": 5.0}


def test_every_schedule_includes_an_explicit_end():
    exp = experiment([{"action": "kill-controller", "schedule": {"every_s": 20, "start_s": 20, "end_s": 80}}])
    assert [f.at_s for f in plan(exp, SNAP)] == [20, 40, 60, 80]
    assert [f.occurrence for f in plan(exp, SNAP)] == [0, 1, 2, 3]


def test_every_schedule_defaults_to_the_during_window_end_excluded():
    exp = experiment([{"action": "kill-controller", "schedule": {"every_s": 25}}])
    assert [f.at_s for f in plan(exp, SNAP)] == [10, 35, 60, 85]  # 110 is the end of during: excluded


def test_random_count_within_window_and_gap():
    exp = experiment([{"action": "kill-replica", "schedule": {"random": {"count": 5, "min_gap_s": 8},
                                                              "start_s": 20, "end_s": 80}}])
    times = [f.at_s for f in plan(exp, SNAP)]
    assert len(times) == 5 and times == sorted(times)
    assert all(20 <= t <= 80 for t in times)
    assert all(b - a >= 8 - 1e-3 for a, b in zip(times, times[1:], strict=False))


def test_random_times_leave_room_for_the_fault_to_end():
    for seed in range(30):
        exp = experiment([{"action": "partition", "target": "w1", "duration_s": 30,
                           "schedule": {"random": {"count": 1}, "start_s": 50}}], seed=seed)
        assert all(50 <= f.at_s <= 80 for f in plan(exp, SNAP))  # ends by 110


def test_random_rate_is_a_poisson_process():
    exp = experiment([{"action": "kill-replica", "schedule": {"random": {"rate_per_min": 6, "min_gap_s": 2}}}])
    times = [f.at_s for f in plan(exp, SNAP)]
    assert 3 <= len(times) <= 25  # mean 10 in 100 s
    assert all(10 <= t < 110 for t in times)
    assert all(b - a >= 2 - 1e-3 for a, b in zip(times, times[1:], strict=False))


def test_deterministic_for_a_seed_and_different_across_seeds():
    method = [{"action": "kill-replica", "target": {"node": "random-worker"}, "schedule": {"random": {"count": 4}}},
              {"action": "kill-node", "target": "random-worker", "schedule": {"random": {"count": 2}}}]
    a = plan(experiment(method, seed=5), SNAP)
    b = plan(experiment(method, seed=5), SNAP)
    assert a == b
    others = [plan(experiment(method, seed=s), SNAP) for s in range(6, 12)]
    assert any(o != a for o in others)


def test_entries_draw_from_their_own_streams():
    first = {"action": "kill-replica", "schedule": {"random": {"count": 3}}}
    alone = plan(experiment([first], seed=3), SNAP)
    with_other = plan(experiment([first, {"action": "kill-controller", "schedule": {"random": {"count": 2}}}], seed=3),
                      SNAP)
    assert [f.at_s for f in alone] == [f.at_s for f in with_other if f.action == "kill-replica"]


def test_kill_replica_seed_is_deterministic_and_per_occurrence():
    exp = experiment([{"action": "kill-replica", "schedule": {"every_s": 20}}], seed=9)
    seeds = [f.seed for f in plan(exp, SNAP)]
    assert seeds == [f.seed for f in plan(exp, SNAP)]
    assert len(set(seeds)) == len(seeds) and all(isinstance(s, int) for s in seeds)


# -- selectors ---------------------------------------------------------------------------------


def test_node_name():
    (f,) = plan(experiment([at("kill-proxy", 20, target="w2")]), SNAP)
    assert f.node == "w2" and f.target == {"node": "w2"}


def test_every_worker_and_every_node():
    workers = plan(experiment([at("partition", 20, target="worker", duration_s=5)]), SNAP)
    assert [f.node for f in workers] == ["w1", "w2", "w3"] and all(f.at_s == 20 for f in workers)
    every = plan(experiment([at("heal", 20, target="all")]), SNAP)
    assert [f.node for f in every] == ["head", "w1", "w2", "w3"]


def test_random_worker_is_a_worker_and_seeded():
    chosen = {plan(experiment([at("kill-node", 20, target="random-worker")], seed=s), SNAP)[0].node for s in range(40)}
    assert chosen == {"w1", "w2", "w3"}


def test_any_is_any_node():
    chosen = {plan(experiment([at("kill-proxy", 20, target="any")], seed=s), SNAP)[0].node for s in range(60)}
    assert chosen == {"head", "w1", "w2", "w3"}


def test_kill_replica_random_worker_hosts_the_deployment():
    method = [at("kill-replica", 20, target={"node": "random-worker", "deployment": "Work"})]
    chosen = {plan(experiment(method, seed=s), SNAP)[0].node for s in range(40)}
    assert chosen == {"w1", "w3"}
    (f,) = plan(experiment(method), SNAP)
    assert f.deployment == "Work" and f.seed is not None


def test_kill_replica_any_leaves_the_choice_to_the_command():
    (f,) = plan(experiment([at("kill-replica", 20, target={"node": "any", "app": "other"})]), SNAP)
    assert f.node is None and f.app == "other"


def test_unknown_deployment_against_the_snapshot():
    with pytest.raises(ScheduleError) as info:
        plan(experiment([at("kill-replica", 20, target={"deployment": "Nope"})]), SNAP)
    e = info.value
    assert e.path == "method[0].target.deployment" and e.value == "Nope" and "Model, Work" in e.fix


def test_unknown_app_against_the_snapshot():
    with pytest.raises(ScheduleError) as info:
        plan(experiment([at("kill-replica", 20, target={"app": "nope"})]), SNAP)
    assert info.value.path == "method[0].target.app"


def test_deployments_unknown_are_not_checked():
    exp = experiment([at("kill-replica", 20, target={"node": "random-worker", "deployment": "Nope"})])
    (f,) = plan(exp, Snapshot.assumed(3))
    assert f.node in ("w1", "w2", "w3")


def test_node_missing_from_the_snapshot():
    with pytest.raises(ScheduleError) as info:
        plan(experiment([at("kill-node", 20, target="w3")]), Snapshot.assumed(2))
    assert info.value.path == "method[0].target.node" and "head, w1, w2" in info.value.fix


def test_no_worker_to_choose():
    head_only = Snapshot((NodeInfo("head", "head"),), ())
    with pytest.raises(ScheduleError) as info:
        plan(experiment([at("kill-node", 20, target="random-worker")]), head_only)
    assert "no worker" in info.value.fix


def test_kill_node_with_duration_plans_the_restart():
    p = plan(experiment([at("kill-node", 30, target="w1", duration_s=40)]), SNAP)
    assert [(f.at_s, f.action, f.node) for f in p] == [(30, "kill-node", "w1"), (70, "restart-node", "w1")]
    assert p[1].restart_of == "kill-node at 30s" and p[0].duration_s is None


def test_held_fault_keeps_its_duration():
    (f,) = plan(experiment([at("netem", 30, target="w1", duration_s=10, args={"loss_pct": 5})]), SNAP)
    assert f.duration_s == 10 and f.args == {"loss_pct": 5} and "for 10s" in f.describe()


def test_to_dict_is_plain_data():
    (f,) = plan(experiment([at("kill-proxy", 20, target="w1")]), SNAP)
    d = f.to_dict()
    assert d["action"] == "kill-proxy" and d["node"] == "w1" and d["description"] == "kill-proxy node=w1"


# -- rollbacks ---------------------------------------------------------------------------------


def test_rollbacks_resolve_against_the_snapshot_then():
    exp = experiment([], rollbacks=[{"action": "heal", "target": "all"},
                                    {"action": "restart-node", "target": "worker"},
                                    {"action": "restart-node", "target": "w1", "only_if_down": False},
                                    {"action": "redeploy"}])
    snap = Snapshot((NodeInfo("head", "head"), NodeInfo("w1", "worker"), NodeInfo("w2", "worker", alive=False)))
    p = plan_rollbacks(exp, snap)
    assert [(f.action, f.node) for f in p] == [
        ("heal", "head"), ("heal", "w1"), ("heal", "w2"),
        ("restart-node", "w2"),  # only the one down
        ("restart-node", "w1"),
        ("redeploy", None),
    ]
    assert all(f.phase == "rollback" for f in p)


def test_random_held_faults_of_one_entry_never_overlap():
    exp = experiment([{"action": "partition", "target": "w1", "duration_s": 10,
                       "schedule": {"random": {"count": 4, "min_gap_s": 2}, "start_s": 20, "end_s": 100}}])
    times = [f.at_s for f in plan(exp, SNAP)]
    assert all(b - a >= 10 - 1e-3 for a, b in zip(times, times[1:], strict=False))
