"""The router's queueing: capacity per replica, the max_queued bound, waking on
release and on a new replica set, and the wait for a first replica. No sockets:
connections are only opened by send(), which these tests do not call."""

import asyncio

import pytest

from serve_core.data.router import Router
from serve_core.errors import BackPressureError, NoReplicasError
from serve_core.ids import DeploymentID, ReplicaAddress

DEP = DeploymentID("app", "d")


def info(*ids, max_ongoing=2, max_queued=-1):
    return {
        "replicas": [ReplicaAddress(r, "127.0.0.1", 1) for r in ids],
        "max_ongoing": max_ongoing, "max_queued": max_queued, "idempotent": False,
    }


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


def test_fills_each_replica_to_max_ongoing_then_queues():
    async def main():
        r = Router(DEP)
        r.update(info("a", "b", max_ongoing=2))
        got = [await r._acquire(set()) for _ in range(4)]
        assert sorted(c.addr.replica_id for c in got) == ["a", "a", "b", "b"]
        waiter = asyncio.ensure_future(r._acquire(set()))
        await asyncio.sleep(0.01)
        assert not waiter.done() and r.queued == 1
        r.release(got[0])
        conn = await waiter
        assert conn is got[0] and r.queued == 0

    run(main())


def test_queue_bound_answers_backpressure():
    async def main():
        r = Router(DEP)
        r.update(info("a", max_ongoing=1, max_queued=1))
        await r._acquire(set())
        first = asyncio.ensure_future(r._acquire(set()))
        await asyncio.sleep(0.01)
        with pytest.raises(BackPressureError) as e:
            await r._acquire(set())
        assert e.value.limit == 1 and "max_queued_requests=1" in str(e.value)
        first.cancel()

    run(main())


def test_waits_for_a_first_replica_and_gives_up_with_a_clear_error():
    async def main():
        r = Router(DEP, no_replica_timeout_s=0.05)
        with pytest.raises(NoReplicasError, match="no running replica"):
            await r._acquire(set())
        r.no_replica_timeout_s = 5
        waiter = asyncio.ensure_future(r._acquire(set()))
        await asyncio.sleep(0.01)
        r.update(info("late"))  # the first replica arrives: the held request goes to it
        assert (await waiter).addr.replica_id == "late"

    run(main())


def test_removed_replica_takes_nothing_new():
    async def main():
        r = Router(DEP)
        r.update(info("a", "b"))
        conn_a = r.conns["a"]
        r.update(info("b"))
        assert conn_a.removed and set(r.conns) == {"b"}
        picks = [(await r._acquire(set())).addr.replica_id for _ in range(2)]
        assert picks == ["b", "b"]

    run(main())


def test_refused_everywhere_backs_off_and_tries_again():
    async def main():
        r = Router(DEP)
        r.update(info("a"))
        conn = await r._acquire({"a"})  # every replica refused once: retry after a pause
        assert conn.addr.replica_id == "a"

    run(main())


def test_a_replica_reported_dead_loses_its_calls_at_once_a_removed_one_finishes_them():
    """A node cut off the network never closes its TCP connections: the controller's word
    that the replica died is what ends the calls it held (retried if idempotent)."""
    from serve_core.data.frames import Lost
    from serve_core.data.router import PendingCall

    async def main():
        r = Router(DEP)
        r.update(info("a", "b"))
        a, b = r.conns["a"], r.conns["b"]
        pa, pb = PendingCall(), PendingCall()
        a.pending[1], b.pending[2] = pa, pb
        r.update({**info(), "dead": ["a"]})  # a died, b was only removed (draining)
        assert await asyncio.wait_for(pa.next(), 1) == Lost(1)
        assert not pb.frames and pb.waiter is None and b.pending == {2: pb}
        assert a.removed and b.removed and r.conns == {}

    run(main())


def test_requests_held_at_zero_replicas_are_bounded_even_with_an_unbounded_queue(monkeypatch):
    from serve_core.data import router as router_mod

    monkeypatch.setattr(router_mod, "HELD_AT_ZERO_MAX", 2)

    async def main():
        r = Router(DEP, no_replica_timeout_s=5)
        r.update(info(max_queued=-1))
        held = [asyncio.ensure_future(r._acquire(set())) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert r.queued == 2
        with pytest.raises(BackPressureError) as e:
            await r._acquire(set())
        assert e.value.no_replica and "no replica yet" in str(e.value)
        r.update(info("a"))  # the first replica: the held requests go to it
        conns = await asyncio.gather(*held)
        assert [c.addr.replica_id for c in conns] == ["a", "a"]

    run(main())
