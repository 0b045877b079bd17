"""The router's retry promises, with a connector of the test's own (no sockets): a request
a replica refused, or that never reached one, goes elsewhere; one a replica accepted and
then lost is retried only when idempotent, and at most MAX_RETRIES times."""

import asyncio

import pytest

from serve_core.data import frames
from serve_core.data.connector import Link
from serve_core.data.router import MAX_RETRIES, Router
from serve_core.errors import ReplicaDiedError
from serve_core.ids import DeploymentID, ReplicaAddress

DEP = DeploymentID("app", "d")


class Channel:
    """A connection to a fake replica that answers each request as its mode says."""

    def __init__(self, replica, mode, on_frame, on_lost, log):
        self.replica, self.mode, self.on_frame, self.on_lost, self.log = replica, mode, on_frame, on_lost, log
        self.transport = self

    def send(self, msg, by_value=False):
        if isinstance(msg, frames.Cancel):
            self.log.append(("cancel", self.replica))
        if not isinstance(msg, frames.Req):
            return
        rid, loop = msg.rid, asyncio.get_running_loop()
        self.log.append(self.replica)
        if self.mode == "ok":
            loop.call_soon(self.on_frame, frames.Result(rid, f"answer from {self.replica}", 0))
        elif self.mode == "reject":  # full or draining: never started
            loop.call_soon(self.on_frame, frames.Reject(rid, 0))
        elif self.mode == "die":  # accepted, then the process died with it
            loop.call_soon(self.on_lost, None)
        elif self.mode == "stream":  # a first item, and the rest later
            loop.call_soon(self.on_frame, frames.Chunk(rid, "item 1"))

    def abort(self):
        self.on_lost(None)

    def close(self):
        pass


class FakeConnector:
    def __init__(self, modes):
        self.modes, self.log = modes, []

    async def connect(self, addr, link, on_frame, on_lost):
        mode = self.modes[addr.replica_id]
        if mode == "refuse":  # nothing listens there (or the handshake failed)
            self.log.append(addr.replica_id)
            raise ConnectionRefusedError(f"{addr.replica_id} refused")
        return Channel(addr.replica_id, mode, on_frame, on_lost, self.log)


def router(**modes):
    connector = FakeConnector(modes)
    r = Router(DEP, no_replica_timeout_s=1.0, connector=connector)
    r.link = Link(b"secret")
    r.update({"replicas": [ReplicaAddress(rid, "10.0.0.1", 1) for rid in modes],
              "max_ongoing": 5, "max_queued": -1, "idempotent": False})
    return r, connector


async def call(r, idempotent=False):
    return (await r.send(frames.KIND_CALL, "__call__", (), {}, {}, idempotent)).first


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


@pytest.mark.parametrize("bad", ["reject", "refuse"])
def test_a_request_no_replica_started_goes_elsewhere(bad):
    async def main():
        r, connector = router(a=bad, b="ok")
        for _ in range(10):
            first = await call(r)  # not idempotent: it never started, so it is always retried
            assert first == frames.Result(first.rid, "answer from b", 0)
        assert "a" in connector.log  # the bad replica was tried, and nothing failed for it

    run(main())


def test_an_accepted_request_lost_with_its_replica_fails_when_not_idempotent():
    async def main():
        r, connector = router(a="die")
        with pytest.raises(ReplicaDiedError):
            await call(r, idempotent=False)
        assert connector.log == ["a"]  # not sent again: it may have run

    run(main())


def test_an_accepted_request_lost_with_its_replica_is_retried_when_idempotent():
    async def main():
        r, connector = router(a="die", b="ok")
        for _ in range(10):
            first = await call(r, idempotent=True)
            assert first.value == "answer from b"

    run(main())


def test_an_idempotent_request_is_retried_at_most_max_retries_times():
    async def main():
        replicas = {f"r{i}": "die" for i in range(MAX_RETRIES + 2)}
        r, connector = router(**replicas)
        with pytest.raises(ReplicaDiedError):
            await call(r, idempotent=True)
        assert len(connector.log) == MAX_RETRIES + 1  # the first attempt and MAX_RETRIES more

    run(main())


def test_a_call_holds_its_replica_slot_until_closed_and_a_close_cancels_only_what_runs():
    async def main():
        r, connector = router(a="stream", b="ok")
        streaming = await r.send(frames.KIND_CALL, "__call__", (), {}, {}, False)
        while not isinstance(streaming.first, frames.Chunk):  # b answered whole: that call holds nothing
            assert r.conns["b"].inflight == 0
            streaming.close()
            streaming = await r.send(frames.KIND_CALL, "__call__", (), {}, {}, False)
        assert r.conns["a"].inflight == 1
        streaming.close()
        streaming.close()  # twice is once
        assert r.conns["a"].inflight == 0 and connector.log.count(("cancel", "a")) == 1
        another = await r.send(frames.KIND_CALL, "__call__", (), {}, {}, False)
        another.close()
        assert sum(c.inflight for c in r.conns.values()) == 0
        cancels = [entry for entry in connector.log if entry[0] == "cancel"]
        assert len(cancels) == (2 if isinstance(another.first, frames.Chunk) else 1)  # a whole answer is not cancelled

    run(main())
