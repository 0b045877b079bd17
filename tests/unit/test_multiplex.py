"""@serve.multiplexed's cache (LRU, shared loads, reports) and the router's preference for
replicas that hold a request's model."""

import asyncio

import pytest

from serve_core.data import multiplex, router
from serve_core.data.router import Router
from serve_core.errors import ConfigError
from serve_core.ids import DeploymentID, ReplicaAddress

# An async __del__ (Ray Serve's unload hook) is awaited on eviction; the garbage collector
# calls it once more later and drops that coroutine.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine 'Model.__del__' was never awaited")


@pytest.fixture
def reports():
    got = []
    multiplex.set_reporter(got.append)
    multiplex._caches.clear()
    yield got
    multiplex.set_reporter(None)
    multiplex._caches.clear()


class Model:
    deleted: list = []

    def __init__(self, model_id):
        self.model_id = model_id

    async def __del__(self):
        Model.deleted.append(self.model_id)


class Server:
    def __init__(self):
        self.loads = []

    @multiplex.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id):
        self.loads.append(model_id)
        await asyncio.sleep(0.01)
        return Model(model_id)


def test_keeps_the_most_recent_models_and_unloads_the_oldest(reports):
    Model.deleted = []

    async def main():
        s = Server()
        assert (await s.get_model("a")).model_id == "a"
        await s.get_model("b")
        await s.get_model("a")  # a is now the most recent: b goes first
        await s.get_model("c")
        assert s.loads == ["a", "b", "c"] and Model.deleted == ["b"]
        assert multiplex.loaded_model_ids() == ["a", "c"]
        await s.get_model("b")  # loaded again, a evicted
        assert s.loads == ["a", "b", "c", "b"] and Model.deleted == ["b", "a"]
        assert reports[-1] == ["b", "c"] and reports[0] == ["a"]

    asyncio.run(main())


def test_concurrent_requests_for_one_model_share_one_load(reports):
    async def main():
        s = Server()
        models = await asyncio.gather(*(s.get_model("m") for _ in range(5)))
        assert s.loads == ["m"] and all(m is models[0] for m in models)

    asyncio.run(main())


def test_a_failed_load_is_raised_and_retried_next_time(reports):
    calls = []

    @multiplex.multiplexed(max_num_models_per_replica=1)
    def load(model_id):  # a plain function, a sync loader
        calls.append(model_id)
        if len(calls) == 1:
            raise OSError("weights not found")
        return model_id.upper()

    async def main():
        with pytest.raises(OSError, match="weights not found"):
            await load("x")
        assert await load("x") == "X" and calls == ["x", "x"]

    asyncio.run(main())


def test_bad_settings_and_ids_name_the_fix(reports):
    with pytest.raises(ConfigError) as e:
        multiplex.multiplexed(max_num_models_per_replica=0)
    assert e.value.field == "max_num_models_per_replica" and "-1 for no limit" in e.value.fix
    with pytest.raises(ConfigError):
        multiplex.multiplexed(lambda: None)

    async def main():
        with pytest.raises(ValueError, match="serve_multiplexed_model_id header"):
            await Server().get_model("")

    asyncio.run(main())


DEP = DeploymentID("app", "d")


def info(models, max_ongoing=2):
    return {"replicas": [ReplicaAddress(r, "127.0.0.1", 1) for r in ("r1", "r2", "r3")],
            "max_ongoing": max_ongoing, "max_queued": -1, "idempotent": False, "models": models}


def test_router_prefers_the_replica_holding_the_model_while_it_has_room():
    async def main():
        r = Router(DEP)
        r.update(info({"r2": ["a"], "r3": ["b"]}))
        got = [await r._acquire(set(), "a") for _ in range(2)]
        assert [c.addr.replica_id for c in got] == ["r2", "r2"]
        spill = await r._acquire(set(), "a")  # r2 is full: the replica holding the fewest models
        assert spill.addr.replica_id == "r1"
        plain = {(await r._acquire(set())).addr.replica_id for _ in range(3)}
        assert plain <= {"r1", "r3"}  # no model id: any replica with room

    asyncio.run(main())


def test_router_spreads_new_models_and_remembers_them_before_any_report():
    async def main():
        r = Router(DEP)
        r.update(info({}, max_ongoing=100))
        first = {m: (await r._acquire(set(), m)).addr.replica_id for m in ("a", "b", "c")}
        assert sorted(first.values()) == ["r1", "r2", "r3"]  # one model each, none evicts
        again = {m: {(await r._acquire(set(), m)).addr.replica_id for _ in range(5)} for m in first}
        assert again == {m: {rid} for m, rid in first.items()}
        # A replica's report made before "a" reached it (it lists only "z") does not make this caller
        # forget "a" (that sent a's next requests elsewhere, loading it twice); a report listing "a"
        # confirms it, and an entry no report confirms within RECENT_UNCONFIRMED_S is dropped.
        holder_of_a = first["a"]
        r.update(info({holder_of_a: ["z"]}, max_ongoing=100))
        assert r.recent["a"][0] == holder_of_a and r.recent["b"][0] == first["b"]
        assert {(await r._acquire(set(), "a")).addr.replica_id for _ in range(3)} == {holder_of_a}
        r.update(info({holder_of_a: ["z", "a"]}, max_ongoing=100))
        assert "a" not in r.recent and "a" in r.models[holder_of_a]
        holder_of_b = first["b"]
        r.recent["b"] = (holder_of_b, r.recent["b"][1] - router.RECENT_UNCONFIRMED_S - 1)
        r.update(info({holder_of_a: ["z", "a"], holder_of_b: ["y"]}, max_ongoing=100))
        assert "b" not in r.recent  # never confirmed: the replica may have evicted it, or never got it

    asyncio.run(main())
