import random

from serve_core.data.router import choose


def test_choose_skips_full_replicas():
    rng = random.Random(0)
    assert choose([("a", 5), ("b", 5)], 5, rng) is None
    assert choose([("a", 5), ("b", 1)], 5, rng) == "b"


def test_power_of_two_prefers_less_loaded():
    rng = random.Random(1)
    loads = [("a", 0), ("b", 3)]
    picks = [choose(loads, 5, rng) for _ in range(200)]
    assert set(picks) == {"a"}  # with two candidates the lighter one always wins


def test_power_of_two_spreads_equal_load():
    rng = random.Random(2)
    loads = [("a", 0), ("b", 0), ("c", 0), ("d", 0)]
    picks = {choose(loads, 5, rng) for _ in range(200)}
    assert picks == {"a", "b", "c", "d"}


def test_never_picks_the_most_loaded_of_three():
    rng = random.Random(3)
    loads = [("a", 0), ("b", 1), ("c", 4)]
    picks = {choose(loads, 5, rng) for _ in range(300)}
    assert "c" not in picks
