"""The controller against a fake cluster: deploy, replace the dead, restart and
re-adopt from the checkpoint without starting anything new. On virtual time
(tests/unit/virtual_time.py with the controller's LoopClock): no test sleeps for real."""

import asyncio
import pickle
import time

import cloudpickle
import pytest

from serve_core.config import DeploymentOptions
from serve_core.control import controller as controller_mod
from serve_core.control.clock import LoopClock
from serve_core.ids import CHECKPOINT_KEY
from tests.unit import virtual_time
from tests.unit.fake_cluster import FakeCluster, FakeReplica


class Model:
    def __call__(self, x):
        return x


@pytest.fixture
def fake(monkeypatch):
    cluster = FakeCluster()

    def no_real_sleep(seconds):
        raise AssertionError(f"time.sleep({seconds}) in a controller unit test: it runs on virtual time")

    monkeypatch.setattr(time, "sleep", no_real_sleep)
    monkeypatch.setattr(controller_mod.metrics, "serve_metrics", lambda host: 0)  # no sockets
    monkeypatch.setattr(controller_mod, "LOOP_PERIOD_S", 0.01)
    return cluster


def record(name, replicas, user_config=None):
    opts = DeploymentOptions(num_replicas=replicas, user_config=user_config)
    return {
        "name": name, "def_bytes": cloudpickle.dumps(Model), "init_bytes": cloudpickle.dumps(((), {})),
        "options": opts.model_dump(mode="json"), "target_replicas": replicas,
    }


async def until(pred, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def app_status(c, pred, app="app", timeout=5.0):
    """The app's status once ``pred`` holds for it (checked every 10 ms)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred(st := (await c.status())["applications"].get(app, {})):
        assert asyncio.get_running_loop().time() < deadline, st
        await asyncio.sleep(0.01)
    return st


async def running(c, app="app"):
    return await app_status(c, lambda st: st.get("status") == "RUNNING", app)


def test_deploy_replace_dead_and_readopt_after_restart(fake):
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 2)])
        await running(c)
        assert len(fake.started) == 2
        version, snap = await c.listen(-1, 1)
        assert len(snap["deployments"]["app#Model"]["replicas"]) == 2 and snap["routes"] == {"/": ("app", "app#Model")}

        # A replica dies: it is replaced and leaves the published set.
        victim = fake.actors[fake.started[0]]
        fake.kill(victim)
        await until(lambda: len(fake.started) == 3)
        await until(lambda: all(a.replica_id != victim.spec["replica_id"] for a in c.snapshot()["deployments"]["app#Model"]["replicas"]))

        # The controller process dies; a new one reloads the checkpoint and re-adopts.
        await asyncio.sleep(0.1)  # let the checkpoint writer catch up
        c._stopping = True
        before = dict(fake.actors)
        c2 = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        v2, snap2 = await c2.listen(version, 5)  # waits for re-adoption before answering
        assert v2 != version
        assert {a.replica_id for a in snap2["deployments"]["app#Model"]["replicas"]} == {
            a.spec["replica_id"] for a in before.values() if isinstance(a, FakeReplica)
        }
        await asyncio.sleep(0.2)
        assert len(fake.started) == 3  # nothing new was started
        assert await running(c2)
        c2._stopping = True

    virtual_time.run(main())


def test_user_config_change_reconfigures_without_new_replicas(fake):
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 1, {"w": 1})])
        await until(lambda: len(fake.started) == 1)
        replica = fake.actors[fake.started[0]]
        await c.deploy_app("app", "/", "Model", [record("Model", 1, {"w": 2})])
        await until(lambda: replica.user_config == {"w": 2})
        assert len(fake.started) == 1
        c._stopping = True

    virtual_time.run(main())


def test_delete_stops_replicas_and_forgets_the_app(fake):
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 2)])
        await until(lambda: len(fake.started) == 2)
        await c.delete_app("app")
        await until(lambda: "app" not in c.apps)
        assert not [n for n in fake.actors if n.startswith("SERVE_CORE_REPLICA")]
        c._stopping = True

    virtual_time.run(main())


def test_replicas_started_after_the_last_checkpoint_are_adopted_not_leaked(fake):
    """The controller dies between starting replicas and writing the checkpoint that
    names them: the next one finds them by name and adopts them."""
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 1)])
        await until(lambda: len(fake.started) == 1)
        await running(c)
        await c.deploy_app("app", "/", "Model", [record("Model", 3)])  # the target is written at once
        await running(c)
        await asyncio.sleep(0.1)
        c._stopping = True
        doc = pickle.loads(fake.kv[CHECKPOINT_KEY])  # as if it died before writing the replicas it added
        doc["replicas"]["app#Model"] = doc["replicas"]["app#Model"][:1]
        fake.kv[CHECKPOINT_KEY] = pickle.dumps(doc)
        c2 = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c2.listen(-1, 5)
        await asyncio.sleep(0.2)
        assert len(fake.started) == 3  # the two missing from the checkpoint were adopted
        replicas = c2.snapshot()["deployments"]["app#Model"]["replicas"]
        assert len(replicas) == 3, replicas
        c2._stopping = True

    virtual_time.run(main())


def test_replicas_still_starting_when_the_controller_died_are_seen_through_not_replaced(fake):
    async def main():
        fake.start_gate = asyncio.Event()  # constructors that have not finished yet
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 2)])
        await until(lambda: len(fake.started) == 2)
        await asyncio.sleep(0.1)
        c._stopping = True
        c2 = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c2.listen(-1, 5)  # re-adoption ends without waiting for the constructors
        assert [r["state"] for r in (await c2.status())["applications"]["app"]["deployments"]["Model"]["replicas"]] == ["STARTING"] * 2
        fake.start_gate.set()
        await running(c2)
        assert len(fake.started) == 2  # the same two, nothing started in their place
        c2._stopping = True

    virtual_time.run(main())


def test_a_spare_worker_is_kept_on_the_node_and_asked_for_again_once_an_actor_took_it(fake):
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await until(lambda: len(fake.prestarted) >= 1)
        await asyncio.sleep(0.1)  # the proxy placed there takes the first: asked for again
        asked = len(fake.prestarted)
        await c.deploy_app("app", "/", "Model", [record("Model", 1)])
        await running(c)
        await until(lambda: len(fake.prestarted) == asked + 1)
        await asyncio.sleep(0.2)
        assert len(fake.prestarted) == asked + 1  # nothing placed since: no more
        assert {n for n, _ in fake.prestarted} == {"node-1"}
        c._stopping = True

    virtual_time.run(main())


def test_shutdown_leaves_no_checkpoint_even_with_a_write_in_flight(fake):
    """A checkpoint written after shutdown deleted it made the next controller restore the
    previous run's port (seen in CI as `serve-core run` ignoring --port)."""

    async def main():
        c = controller_mod.Controller({"location": "EveryNode", "port": 8350}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 1)])
        await until(lambda: fake.started)
        writing, release = asyncio.Event(), asyncio.Event()

        async def held_put(data):  # a write that stays in flight until the test lets it finish
            writing.set()
            await release.wait()
            fake.kv_put(CHECKPOINT_KEY, data)

        c.checkpoints.put = held_put
        c._checkpoint()
        await asyncio.wait_for(writing.wait(), 5)  # the writer has taken it and is inside kv_put
        shutdown = asyncio.ensure_future(c.graceful_shutdown(timeout_s=2))
        await asyncio.sleep(0.2)  # shutdown runs while the write is in flight
        release.set()
        await shutdown
        c._checkpoint()
        await asyncio.sleep(0.3)
        assert CHECKPOINT_KEY not in fake.kv
        c2 = controller_mod.Controller({"location": "EveryNode", "port": 9000}, clock=LoopClock(), cluster=fake)
        assert c2.http_options["port"] == 9000

    virtual_time.run(main())


def test_a_replica_reporting_its_models_is_published_to_callers(fake):
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 2)])
        await until(lambda: len(c.snapshot()["deployments"].get("app#Model", {}).get("replicas", [])) == 2)
        version, _ = await c.listen(-1, 1)
        rid = c.snapshot()["deployments"]["app#Model"]["replicas"][0].replica_id
        await c.record_models("app#Model", rid, ["a", "b"])
        v2, snap = await c.listen(version, 1)
        assert v2 != version and snap["deployments"]["app#Model"]["models"] == {rid: ["a", "b"]}
        await c.record_models("app#Model", "gone", ["x"])  # a replica it no longer knows: ignored
        assert "gone" not in c.snapshot()["deployments"]["app#Model"]["models"]
        await c.record_models("app#Model", rid, ["a"], seq=5)
        await c.record_models("app#Model", rid, ["a", "b", "c"], seq=4)  # older, arrived late: dropped
        assert c.snapshot()["deployments"]["app#Model"]["models"] == {rid: ["a"]}

    virtual_time.run(main())


class NewModel:
    def __call__(self, x):
        return -x


def test_a_rollout_whose_replicas_keep_failing_is_rolled_back(fake):
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 2)])
        await until(lambda: c.snapshot()["deployments"].get("app#Model", {}).get("replicas", []).__len__() == 2)
        serving = {a.replica_id for a in c.snapshot()["deployments"]["app#Model"]["replicas"]}
        old_version = c.targets[next(iter(c.targets))].code_version()

        bad = {**record("Model", 2), "def_bytes": cloudpickle.dumps(NewModel)}
        dep = next(iter(c.targets))
        fake.failing_versions.add(controller_mod.ds.DeploymentTarget(
            dep, bad["def_bytes"], bad["init_bytes"], bad["options"], 2).code_version())
        await c.deploy_app("app", "/", "Model", [bad])
        st = await app_status(c, lambda st: st["status"] == "DEPLOY_FAILED")
        assert "rolled back to the previous version" in st["message"] and "bad weights" in st["message"]
        assert c.targets[dep].code_version() == old_version
        # The old replicas served throughout and still do; none of the new version is left.
        await until(lambda: all(r.version == old_version for r in c.replicas[dep].values()))
        assert {a.replica_id for a in c.snapshot()["deployments"]["app#Model"]["replicas"]} == serving
        assert len(fake.started) == 2 + controller_mod.ds.MAX_START_FAILURES
        assert dep not in c.previous

        # The rollback survives a controller restart; a good deploy then clears it.
        await asyncio.sleep(0.1)
        c._stopping = True
        c2 = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c2.listen(-1, 5)
        assert "rolled back" in (await c2.status())["applications"]["app"]["message"]
        await c2.deploy_app("app", "/", "Model", [record("Model", 2)])
        assert (await c2.status())["applications"]["app"]["message"] == ""
        c2._stopping = True

    virtual_time.run(main())


def test_a_rollout_replaces_at_most_its_surge_at_once(fake):
    async def main():
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await c.deploy_app("app", "/", "Model", [record("Model", 4)])
        await until(lambda: len(c.snapshot()["deployments"].get("app#Model", {}).get("replicas", [])) == 4)
        fake.start_gate = asyncio.Event()  # new replicas hang in their constructor
        new = {**record("Model", 4), "def_bytes": cloudpickle.dumps(NewModel)}
        new["options"]["max_surge_fraction"] = 0.5
        await c.deploy_app("app", "/", "Model", [new])
        await asyncio.sleep(0.3)
        dep = next(iter(c.targets))
        states = [r.state.value for r in c.replicas[dep].values()]
        assert states.count("STARTING") == 2 and states.count("RUNNING") == 4, states  # 50% of 4
        fake.start_gate.set()
        await until(lambda: all(r.version == c.targets[dep].code_version() for r in c.replicas[dep].values()))
        await until(lambda: dep not in c.previous)  # the next pass sees the rollout done
        assert len(c.replicas[dep]) == 4
        c._stopping = True

    virtual_time.run(main())


def test_replicas_spread_over_the_nodes_and_a_replacement_goes_where_its_sibling_is_not(fake):
    """Ray's SPREAD once put both replicas of a deployment on one node (the campaign's
    worker-node-loss run); the controller now picks each replica's node itself."""

    async def main():
        fake.nodes = ["node-1", "node-2", "node-3"]
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await until(lambda: len(c.proxies.node_info) == 3)
        await c.deploy_app("app", "/", "Model", [record("Model", 3)])
        await running(c)
        assert sorted(fake.placed[n] for n in fake.started) == ["node-1", "node-2", "node-3"]

        lost = fake.placed[fake.started[1]]
        fake.kill(fake.actors[fake.started[1]])
        await until(lambda: len(fake.started) == 4)
        assert fake.placed[fake.started[3]] == lost  # not next to a sibling
        c._stopping = True

    virtual_time.run(main())


def test_max_replicas_per_node_leaves_a_replica_waiting_with_the_reason_in_status(fake):
    async def main():
        fake.nodes = ["node-1", "node-2"]
        c = controller_mod.Controller({"location": "EveryNode"}, clock=LoopClock(), cluster=fake)
        await until(lambda: len(c.proxies.node_info) == 2)
        rec = record("Model", 3)
        rec["options"]["max_replicas_per_node"] = 1
        await c.deploy_app("app", "/", "Model", [rec])
        st = await app_status(c, lambda st: "max_replicas_per_node=1" in st.get("message", ""))
        assert st["status"] == "DEPLOYING" and len(fake.started) == 2
        assert sorted(fake.placed[n] for n in fake.started) == ["node-1", "node-2"]

        fake.nodes.append("node-3")  # room at last: the third starts there and the reason goes
        await running(c)
        assert fake.placed[fake.started[2]] == "node-3"
        assert (await c.status())["applications"]["app"]["message"] == ""
        c._stopping = True

    virtual_time.run(main())
