"""Weighted, sticky splitting and the canary policy, stepped with a fake clock."""

import pytest

from serve_core.errors import ConfigError
from serve_core.patterns.canary import CANARY, PROMOTED, ROLLED_BACK, STABLE, Canary, CanaryPolicy
from serve_core.patterns.traffic_split import Split, bucket, check_weights, pick


def test_split_follows_weights_and_keys_are_sticky():
    split = Split({"a": 80, "b": 20}, seed=1)
    got = [split.assign() for _ in range(5000)]
    assert 0.77 < got.count("a") / len(got) < 0.83
    keyed = [split.assign(f"user-{i}") for i in range(2000)]
    assert 0.75 < keyed.count("a") / len(keyed) < 0.85
    assert all(split.assign(f"user-{i}") == keyed[i] for i in range(2000))  # the same arm every time
    assert split.assign("user-1", forced="b") == "b"


def test_a_growing_share_keeps_the_keys_it_had():
    keys = [f"k{i}" for i in range(1000)]
    small = {k for k in keys if pick({"canary": 0.1, "stable": 0.9}, bucket(k)) == "canary"}
    large = {k for k in keys if pick({"canary": 0.5, "stable": 0.5}, bucket(k)) == "canary"}
    assert small and small < large


def test_bad_weights_and_arms_name_the_field():
    with pytest.raises(ConfigError, match=r"weights\.b=-1"):
        check_weights({"a": 1, "b": -1})
    with pytest.raises(ConfigError, match="two or more arms"):
        check_weights({"a": 1})
    with pytest.raises(ConfigError, match="above 0"):
        check_weights({"a": 0, "b": 0})
    with pytest.raises(ConfigError, match="name one of the arms: a, b"):
        Split({"a": 1, "b": 1}).assign(forced="c")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def answer(c, n, ok=True, latency_ms=10.0):
    for _ in range(n):
        c.record(CANARY, ok, latency_ms)


def test_a_healthy_canary_is_promoted_step_by_step():
    clock = Clock()
    c = Canary(CanaryPolicy(steps=(0.1, 0.5, 1.0), step_s=30, min_requests=20), "t-healthy", clock, seed=3)
    assert c.share == 0.1
    answer(c, 50)
    assert c.share == 0.1  # enough answers, not yet long enough
    clock.t = 30
    c.tick()
    assert c.share == 0.5 and c.stats.count == 0  # each step is judged on its own answers
    clock.t = 60
    c.tick()
    assert c.share == 0.5  # time alone is not enough: no answers yet in this step
    answer(c, 20)
    assert c.state == PROMOTED and c.share == 1.0 and c.route() == CANARY


def test_a_canary_breaking_its_error_slo_is_rolled_back_at_once():
    clock = Clock()
    c = Canary(CanaryPolicy(min_requests=20, max_error_rate=0.05), "t-errors", clock, seed=3)
    answer(c, 17)
    answer(c, 2, ok=False)
    assert c.state != ROLLED_BACK  # 19 answers: too few to judge
    answer(c, 1, ok=False)
    assert c.state == ROLLED_BACK and c.share == 0.0 and "error rate 15.0% > 5.0%" in c.reason
    assert all(c.route(f"k{i}") == STABLE for i in range(200))
    answer(c, 100)  # it stays rolled back
    assert c.state == ROLLED_BACK


def test_a_slow_canary_is_rolled_back():
    c = Canary(CanaryPolicy(min_requests=10, max_p99_ms=100), "t-slow", Clock(), seed=3)
    answer(c, 9, latency_ms=20)
    answer(c, 1, latency_ms=900)
    assert c.state == ROLLED_BACK and "p99 900 ms > 100 ms" in c.reason


def test_bad_policies_name_the_field():
    for kw, field in [({"steps": (0.5, 0.2, 1.0)}, "steps"), ({"steps": (0.1, 0.5)}, "steps"),
                      ({"step_s": 0}, "step_s"), ({"min_requests": 0}, "min_requests"),
                      ({"max_error_rate": 1.5}, "max_error_rate"), ({"max_p99_ms": -1}, "max_p99_ms")]:
        with pytest.raises(ConfigError, match=f"invalid {field}="):
            CanaryPolicy(**kw)
