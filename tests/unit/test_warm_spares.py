"""Which nodes get a spare worker asked for, and when again."""

import asyncio

import pytest

from serve_core.control import warm_spares
from serve_core.control.warm_spares import KEEP_ALIVE_S, RETRY_S, WarmSpares

HEAD = {"node_id": "head", "ip": "10.0.0.1", "cpus": 0.0, "raylet_port": 7}
W1 = {"node_id": "w1", "ip": "10.0.0.2", "cpus": 2.0, "raylet_port": 7}
W2 = {"node_id": "w2", "ip": "10.0.0.3", "cpus": 2.0, "raylet_port": 7}


def ids(nodes):
    return [n["node_id"] for n in nodes]


def test_nodes_without_cpus_get_no_spare_and_each_other_node_is_asked_once():
    s = WarmSpares(1)
    assert ids(s.due([HEAD, W1, W2], 0.0)) == ["w1", "w2"]
    s.asked = {"w1": 0.0, "w2": 0.0}
    assert s.due([HEAD, W1, W2], 10.0) == []


def test_a_node_where_an_actor_was_placed_is_asked_again_and_expired_spares_are_renewed():
    s = WarmSpares(1)
    s.asked = {"w1": 0.0, "w2": 0.0}
    s.placed("w2")
    assert ids(s.due([W1, W2], 1.0)) == ["w2"]
    assert ids(s.due([W1, W2], KEEP_ALIVE_S + 1)) == ["w1", "w2"]


def test_turned_off_with_zero():
    assert WarmSpares(0).due([W1], 0.0) == []


@pytest.mark.parametrize("raw,want", [("2", 2), ("0", 0), ("-1", 0), ("many", 1)])
def test_spares_per_node_from_the_environment(monkeypatch, raw, want):
    monkeypatch.setenv("SERVE_CORE_WARM_WORKERS", raw)
    assert warm_spares.spares_per_node() == want


def test_a_raylet_that_refuses_is_left_alone_for_a_while(monkeypatch):
    calls = []

    class Refusing:
        @staticmethod
        def prestart_workers(node, count, keep_alive_s):
            calls.append(node["node_id"])
            raise RuntimeError("Method not found: PrestartWorkers")

    s = WarmSpares(1, cluster=Refusing)
    asyncio.run(s.refresh([W1], 0.0))
    asyncio.run(s.refresh([W1], 1.0))
    assert calls == ["w1"]
    asyncio.run(s.refresh([W1], RETRY_S + 1))
    assert calls == ["w1", "w1"]
