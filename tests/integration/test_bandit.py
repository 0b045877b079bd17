"""The bandit router example on a real cluster: with a simulated reward (v2's answers are
rewarded 70% of the time, v1's 40%), most traffic goes to v2 within 300 requests; rewards
and stats over HTTP."""

import random

import requests

import serve_core as serve
from examples.bandit.app import app
from tests.integration.conftest import BASE

REWARD = {"v1": 0.4, "v2": 0.7}


def test_traffic_moves_to_the_arm_that_earns_more(serve_core_app):
    h = serve.run(app, name="bandit", route_prefix="/bandit")
    world = random.Random(7)
    picks = []
    for _ in range(300):
        got = h.predict.remote({"text": "great"}).result(timeout_s=10)
        arm = got["arm"]
        assert got["answer"]["version"] == arm
        picks.append(arm)
        h.reward.remote(arm, 1.0 if world.random() < REWARD[arm] else 0.0).result(timeout_s=10)
    assert picks[-100:].count("v2") > 70, picks[-100:].count("v2")

    r = requests.post(BASE + "/bandit", json={"text": "fine"}, timeout=10)
    assert r.status_code == 200 and r.json()["arm"] in REWARD
    r = requests.post(BASE + "/bandit/reward", json={"arm": r.json()["arm"], "reward": 1}, timeout=10)
    assert r.status_code == 200
    stats = requests.get(BASE + "/bandit/stats", timeout=10).json()
    assert stats["policy"] == "thompson" and sum(a["pulls"] for a in stats["arms"].values()) == 301
    assert sum(a["rewards"] for a in stats["arms"].values()) == 301
    bad = requests.post(BASE + "/bandit/reward", json={"arm": "v9", "reward": 1}, timeout=10)
    assert bad.status_code == 400 and "one of the arms: v1, v2" in bad.json()["message"]
