from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import asyncio

from ray.serve.exceptions import RequestCancelledError


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Worker:
    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def slow(self) -> str:
        self.started += 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return "finished"

    async def ticks(self, n: int):
        for i in range(n):
            yield i
            await asyncio.sleep(0.01)

    async def started_count(self) -> int:
        return self.started

    async def cancelled_count(self) -> int:
        for _ in range(500):  # the cancellation reaches the replica a moment later
            if self.cancelled:
                break
            await asyncio.sleep(0.02)
        return self.cancelled


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Caller:
    """Ray Serve's handle guide: response.cancel() cancels the call in the replica, and the
    response then raises RequestCancelledError."""

    def __init__(self, worker) -> None:
        self.worker = worker

    async def cancel_one(self) -> dict:
        response = self.worker.slow.remote()
        for _ in range(500):  # cancel a call the worker is running (on a busy machine it may
            if await self.worker.started_count.remote():  # take more than a moment to arrive)
                break
            await asyncio.sleep(0.02)
        response.cancel()
        try:
            await response
        except RequestCancelledError:
            return {"raised": "RequestCancelledError", "worker_saw": await self.worker.cancelled_count.remote()}
        return {"raised": None}

    async def cancel_stream(self) -> dict:
        stream = self.worker.options(stream=True).ticks.remote(1000)
        first = [await stream.__anext__(), await stream.__anext__()]
        stream.cancel()
        try:
            async for _ in stream:
                pass
        except RequestCancelledError:
            return {"first": first, "raised": "RequestCancelledError"}
        return {"first": first, "raised": None}


app = Caller.bind(Worker.bind())

ROUTE_PREFIX = None

# fmt: off
PROBES = [
    {"kind": "handle", "method_name": "cancel_one", "args": []},
    {"kind": "handle", "method_name": "cancel_stream", "args": []},
]
# fmt: on
