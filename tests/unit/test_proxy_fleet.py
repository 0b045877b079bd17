"""The controller's proxy fleet against a fake cluster: a proxy that failed on a node that
later left the cluster is not reported (issue 16: every later deploy failed on it)."""

import asyncio

import pytest

from serve_core.control import proxy_fleet
from tests.unit.fake_cluster import FakeCluster


@pytest.fixture
def fake(monkeypatch):
    cluster = FakeCluster()
    monkeypatch.setattr(proxy_fleet, "NODE_CHECK_PERIOD_S", 0.0)
    return cluster


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_failed_proxy_of_a_node_that_left_is_forgotten(fake):
    async def run():
        fake.nodes = ["node-1", "node-2"]
        fleet = proxy_fleet.ProxyFleet({}, on_change=lambda: None, cluster=fake)
        await fleet.reconcile()
        await settle()
        assert {n: p["state"] for n, p in (await fleet.status(0)).items()} == {"node-1": "HEALTHY", "node-2": "HEALTHY"}

        fake.kill(fleet.proxies["node-2"]["handle"])  # its node dies: the proxy with it
        await settle()
        assert (await fleet.status(0))["node-2"]["state"] == "FAILED"  # while the node is still listed

        fake.nodes = ["node-1", "node-3"]  # Ray declared node-2 dead; it came back as node-3
        fleet._last_check = 0.0
        await fleet.reconcile()
        await settle()
        status = await fleet.status(0)
        assert {n: p["state"] for n, p in status.items()} == {"node-1": "HEALTHY", "node-3": "HEALTHY"}
        assert fleet.errors == {}
    asyncio.run(run())
