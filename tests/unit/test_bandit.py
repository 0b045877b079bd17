"""The bandit policies on a simulated reward: most traffic goes to the better arm within a
stated number of requests; bad settings and rewards name the fix."""

import random

import pytest

from serve_core.errors import ConfigError
from serve_core.patterns.bandit import Bandit

REWARD = {"good": 0.7, "bad": 0.4}  # probability that an answer earns a reward of 1


def run(policy, n, seed=1):
    b = Bandit(list(REWARD), policy=policy, epsilon=0.1, seed=seed)
    world = random.Random(seed + 100)
    picks = []
    for _ in range(n):
        arm = b.choose()
        picks.append(arm)
        b.reward(arm, 1.0 if world.random() < REWARD[arm] else 0.0)
    return b, picks


@pytest.mark.parametrize("policy", ["thompson", "epsilon_greedy"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_most_traffic_goes_to_the_better_arm_within_500_requests(policy, seed):
    b, picks = run(policy, 500, seed)
    last = picks[-200:]
    assert last.count("good") / len(last) > 0.7, b.summary()
    assert b.summary()["good"]["pulls"] + b.summary()["bad"]["pulls"] == 500


def test_bad_settings_and_rewards_name_the_fix():
    with pytest.raises(ConfigError, match="two or more distinct"):
        Bandit(["only"])
    with pytest.raises(ConfigError, match="epsilon_greedy, thompson"):
        Bandit(["a", "b"], policy="ucb")
    b = Bandit(["a", "b"], seed=0)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        b.reward("a", 5)
    with pytest.raises(ConfigError, match="one of the arms: a, b"):
        b.reward("c", 1)
