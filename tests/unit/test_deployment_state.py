from serve_core.control.deployment_state import DeploymentTarget, ReplicaRecord, plan, status
from serve_core.ids import DeploymentID, DeploymentStatus, ReplicaState

DEP = DeploymentID("app", "d")


def target(n, code=b"v1", user_config=None):
    return DeploymentTarget(DEP, code, b"init", {"user_config": user_config}, n)


def rec(rid, t, state=ReplicaState.RUNNING, started=0.0):
    r = ReplicaRecord(rid, f"actor-{rid}", t.code_version(), t.config_version(), state)
    r.started_at = started
    return r


def test_scale_out_and_in():
    t = target(3)
    reps = {"a": rec("a", t)}
    assert plan(t, reps, False).start == 2
    t1 = target(1)
    reps = {"a": rec("a", t1, started=1), "b": rec("b", t1, started=2), "c": rec("c", t1, ReplicaState.STARTING)}
    p = plan(t1, reps, False)
    assert p.start == 0 and set(p.stop) == {"c", "b"}  # starting first, then newest


def test_rolling_update_keeps_capacity():
    old_t, new_t = target(2, b"v1"), target(2, b"v2")
    reps = {"a": rec("a", old_t), "b": rec("b", old_t)}
    p = plan(new_t, reps, False)
    assert p.start == 1 and p.stop == []  # surge of one, nothing stops yet
    reps["n1"] = rec("n1", new_t)
    p = plan(new_t, reps, False)
    assert p.start == 0 and len(p.stop) == 1  # one new runs: one old goes first


def test_user_config_change_reconfigures_in_place():
    t_old, t_new = target(2, user_config={"w": 1}), target(2, user_config={"w": 2})
    reps = {"a": rec("a", t_old), "b": rec("b", t_old)}
    p = plan(t_new, reps, False)
    assert p.start == 0 and p.stop == [] and sorted(p.reconfigure) == ["a", "b"]


def test_deleted_stops_everything_and_failed_starts_nothing():
    t = target(2)
    reps = {"a": rec("a", t)}
    assert plan(None, reps, False).stop == ["a"]
    assert plan(t, {}, True).start == 0


def test_status():
    t = target(1)
    assert status(t, {"a": rec("a", t)}, False) == DeploymentStatus.HEALTHY
    assert status(t, {"a": rec("a", t, ReplicaState.STARTING)}, False) == DeploymentStatus.UPDATING
    assert status(t, {}, True) == DeploymentStatus.DEPLOY_FAILED
    draining = {"a": rec("a", t), "b": rec("b", t, ReplicaState.STOPPING)}
    assert status(t, draining, False) == DeploymentStatus.HEALTHY


def test_surge_fraction_bounds_how_many_change_at_once():
    old_t = target(10, b"v1")
    new_t = DeploymentTarget(DEP, b"v2", b"init", {"user_config": None, "max_surge_fraction": 0.5}, 10)
    reps = {f"o{i}": rec(f"o{i}", old_t) for i in range(10)}
    assert plan(new_t, reps, False).start == 5
    assert plan(target(10, b"v2"), reps, False).start == 2  # the default, 20%
    # The fraction is a live option: changing it alone restarts nothing.
    assert new_t.code_version() == target(10, b"v2").code_version()
