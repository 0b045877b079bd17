from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import asyncio

import numpy as np
from starlette.requests import Request
from starlette.responses import StreamingResponse


def total_length(texts: list[str]) -> int:
    return sum(len(t) for t in texts)


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Batcher:
    """Ray Serve's batching guide: numpy results, batch_size_fn, changing the batch size at
    run time, and streaming batches (a batched async generator)."""

    def __init__(self) -> None:
        self.sizes: dict[str, list[int]] = {"triple": [], "lengths": [], "countdown": []}

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.2)
    async def triple(self, xs: list[int]) -> np.ndarray:
        self.sizes["triple"].append(len(xs))
        return np.array(xs) * 3

    @serve.batch(max_batch_size=10, batch_wait_timeout_s=0.2, batch_size_fn=total_length)
    async def lengths(self, texts: list[str]) -> list[int]:
        self.sizes["lengths"].append(len(texts))
        return [len(t) for t in texts]

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.2)
    async def countdown(self, starts: list[int]):
        self.sizes["countdown"].append(len(starts))
        for step in range(max(starts)):
            yield [s - step if s - step > 0 else StopIteration for s in starts]

    async def triple_many(self, xs: list[int]) -> dict:
        before = len(self.sizes["triple"])
        out = await asyncio.gather(*(self.triple(x) for x in xs))
        return {"results": [int(v) for v in out], "sizes": self.sizes["triple"][before:]}

    async def lengths_many(self, texts: list[str]) -> dict:
        before = len(self.sizes["lengths"])
        out = await asyncio.gather(*(self.lengths(t) for t in texts))
        return {"results": list(out), "sizes": sorted(self.sizes["lengths"][before:])}

    def resize(self, n: int) -> int:
        self.triple.set_max_batch_size(n)
        self.triple.set_batch_wait_timeout_s(0.2)
        return n

    async def countdown_many(self, starts: list[int]) -> dict:
        async def collect(s: int) -> list[int]:
            return [x async for x in self.countdown(s)]

        before = len(self.sizes["countdown"])
        out = await asyncio.gather(*(collect(s) for s in starts))
        return {"results": list(out), "sizes": self.sizes["countdown"][before:]}

    async def __call__(self, request: Request) -> StreamingResponse:
        start = int(request.query_params.get("start", "3"))

        async def lines():
            async for x in self.countdown(start):
                yield f"{x}\n"

        return StreamingResponse(lines(), media_type="text/plain")


app = Batcher.bind()

ROUTE_PREFIX = "/batch"

# fmt: off
PROBES = [
    {"kind": "handle", "method_name": "triple_many", "args": [[1, 2, 3, 4, 5, 6]]},
    {"kind": "handle", "method_name": "lengths_many", "args": [["abcd", "efgh", "ijkl", "mnop", "qrst"]]},
    {"kind": "handle", "method_name": "resize", "args": [2]},
    {"kind": "handle", "method_name": "triple_many", "args": [[1, 2, 3, 4, 5]]},
    {"kind": "handle", "method_name": "countdown_many", "args": [[3, 1, 2]]},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"start": "3"}},
]
# fmt: on
