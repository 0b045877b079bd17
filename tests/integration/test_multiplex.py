"""Model multiplexing on a real cluster: the model id from the header and the handle option,
LRU eviction per replica, and routing to the replica that already holds a model."""

import collections

import requests

import serve_core as serve
from tests.integration import apps
from tests.integration.conftest import BASE


def call(model_id):
    r = requests.get(BASE + "/mx", headers={"serve_multiplexed_model_id": model_id}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_requests_for_a_model_go_where_it_is_loaded(serve_core_app):
    serve.run(apps.Multiplexed.bind(), name="mx", route_prefix="/mx")
    served = collections.defaultdict(set)
    loads = {}  # replica pid -> the models it loaded, in order, as of its last answer
    for _ in range(5):
        for model_id in ("a", "b", "c"):
            got = call(model_id)
            assert got["model"] == model_id
            served[model_id].add(got["pid"])
            loads[got["pid"]] = got["loads"]
    # Three models on two replicas of two: each was loaded once, on one replica, which served
    # all its requests (spread first, so no replica had to evict one).
    assert all(len(pids) == 1 for pids in served.values()), dict(served)
    assert sorted(m for ms in loads.values() for m in ms) == ["a", "b", "c"], loads


def test_handle_option_and_lru_eviction_on_one_replica(serve_core_app):
    h = serve.run(apps.Multiplexed.options(num_replicas=1).bind(), name="mx", route_prefix=None)
    for model_id in ("a", "b", "a", "c", "a", "b"):
        got = h.predict.options(multiplexed_model_id=model_id).remote(1).result(timeout_s=10)
        assert got["model"] == model_id and got["x"] == 1
    # Two models fit: a, b; a again (cached); c evicts b (a was used last); a cached; b again.
    assert got["loads"] == ["a", "b", "c", "b"]
