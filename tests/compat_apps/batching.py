from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import asyncio

from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Doubler:
    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.05)
    async def double(self, xs: list[int]) -> list[int]:
        self.batch_sizes.append(len(xs))
        return [2 * x for x in xs]

    async def double_many(self, xs: list[int]) -> dict:
        # Issue all calls concurrently so they queue up and get batched:
        # 10 items with max_batch_size=4 -> batches of 4, 4, 2.
        before = len(self.batch_sizes)
        results = await asyncio.gather(*(self.double(x) for x in xs))
        return {"results": list(results), "batch_sizes": self.batch_sizes[before:]}

    def get_batch_sizes(self) -> list[int]:
        return list(self.batch_sizes)

    async def __call__(self, request: Request) -> dict:
        return await self.double_many((await request.json())["values"])


app = Doubler.bind()

ROUTE_PREFIX = "/"

# fmt: off
PROBES = [
    {"kind": "http", "method": "POST", "path": "/", "json": {"values": list(range(10))}, "params": None},
    {"kind": "http", "method": "POST", "path": "/", "json": {"values": [7, 8, 9]}, "params": None},
    {"kind": "handle", "method_name": "double_many", "args": [[1, 2, 3, 4, 5, 6, 7, 8]]},
    # One request at a time from outside: each is a batch of 1 after the wait timeout.
    {"kind": "handle", "method_name": "double", "args": [21]},
    {"kind": "handle", "method_name": "get_batch_sizes", "args": []},
]
# fmt: on
