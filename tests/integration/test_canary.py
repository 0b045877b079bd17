"""Canary and A/B splitting on a real cluster: a healthy canary is promoted step by step; one
that breaks its error SLO (its user_config changed in place) is rolled back, its share drops
to 0 (also in Prometheus' metric) and every later request goes to the stable version; the
A/B split is sticky by user and a header forces an arm."""

import time

import requests

import serve_core as serve
from examples.ab_test.app import build as build_ab
from examples.canary.app import build as build_canary
from tests.integration.conftest import BASE


def router_replica(app):
    return serve.status().applications[app].deployments["CanaryRouter"]


def send(h, n, key=None):
    return [h.predict.remote({"text": "good"}, key).result(timeout_s=10)["arm"] for _ in range(n)]


def test_a_healthy_canary_is_promoted(serve_core_app):
    policy = {"steps": [0.3, 1.0], "step_s": 1.0, "min_requests": 15}
    h = serve.run(build_canary({"policy": policy, "name": "healthy"}), name="canary-ok", route_prefix="/canary-ok")
    first = send(h, 60)
    assert 5 < first.count("canary") < 35, first.count("canary")  # about 30%
    for _ in range(100):  # a step lasts step_s of wall time, however fast the answers come
        if h.status.remote().result(timeout_s=10)["state"] == "promoted":
            break
        send(h, 5)
        time.sleep(0.1)
    st = h.status.remote().result(timeout_s=10)
    assert st["state"] == "promoted" and st["share"] == 1.0, st
    assert set(send(h, 20)) == {"canary"}


def test_a_canary_breaking_its_slo_is_rolled_back_and_gets_no_traffic(serve_core_app):
    policy = {"steps": [0.5, 1.0], "step_s": 600, "min_requests": 20, "max_error_rate": 0.05}
    args = {"policy": policy, "name": "breaking"}
    h = serve.run(build_canary(args), name="canary-bad", route_prefix="/canary-bad")
    send(h, 40)
    assert h.status.remote().result(timeout_s=10)["state"] == "progressing"
    pids = {r["pid"] for d in serve.status().applications["canary-bad"].deployments.values() for r in d.replicas}

    # The canary breaks: only its user_config changes, so nothing restarts.
    h = serve.run(build_canary({**args, "canary_config": {"error_rate": 0.6}}), name="canary-bad", route_prefix="/canary-bad")
    errors = 0
    for _ in range(300):
        if h.status.remote().result(timeout_s=10)["state"] == "rolled_back":
            break
        try:
            h.predict.remote({"text": "good"}).result(timeout_s=10)
        except Exception:
            errors += 1
    st = h.status.remote().result(timeout_s=10)
    assert st["state"] == "rolled_back" and st["share"] == 0.0 and "error rate" in st["reason"], st
    assert errors > 0
    assert set(send(h, 50)) == {"stable"}
    r = requests.post(BASE + "/canary-bad", json={"text": "good"}, headers={"x-user-id": "u1"}, timeout=10)
    assert r.status_code == 200 and r.json()["arm"] == "stable"
    assert {r["pid"] for d in serve.status().applications["canary-bad"].deployments.values() for r in d.replicas} == pids

    router = router_replica("canary-bad").replicas[0]
    scraped = requests.get(f"http://{router['host']}:{router['metrics_port']}/metrics", timeout=10).text
    assert 'serve_core_canary_share{canary="breaking"} 0.0' in scraped
    assert 'serve_core_canary_rollbacks_total{canary="breaking"} 1.0' in scraped


def test_ab_split_is_sticky_by_user_and_a_header_forces_an_arm(serve_core_app):
    serve.run(build_ab({"weights": {"a": 70, "b": 30}}), name="ab", route_prefix="/ab")

    def arm(user=None, force=None):
        headers = {k: v for k, v in (("x-user-id", user), ("x-ab-arm", force)) if v}
        r = requests.post(BASE + "/ab", json={"text": "good"}, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["answer"]["version"] == r.json()["arm"]
        return r.json()["arm"]

    first = {f"user-{i}": arm(f"user-{i}") for i in range(60)}
    assert 0.5 < list(first.values()).count("a") / 60 < 0.9
    assert all(arm(u) == a for u, a in list(first.items())[:20])  # the same arm again
    assert arm("user-0", force="b") == "b" and arm("user-0", force="a") == "a"
    bad = requests.post(BASE + "/ab", json={}, headers={"x-ab-arm": "c"}, timeout=10)
    assert bad.status_code == 400 and "one of the arms: a, b" in bad.json()["message"]
    stats = requests.get(BASE + "/ab/stats", timeout=10).json()
    assert sum(stats["requests"].values()) == 60 + 20 + 2 and stats["shares"] == {"a": 0.7, "b": 0.3}
