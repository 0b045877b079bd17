from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import asyncio

from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Adder:
    def __init__(self, increment: int) -> None:
        self.increment = increment

    def __call__(self, x: int) -> int:
        return x + self.increment


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Multiplier:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor

    def describe(self) -> str:
        return f"times {self.factor}"


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Combiner:
    def __init__(self, adder, multiplier) -> None:
        self.adder = adder
        self.multiplier = multiplier

    async def chain(self, x: int) -> int:
        # The adder's response is passed on unresolved: (x + 1) * 3.
        return await self.multiplier.remote(self.adder.remote(x))

    async def fanout(self, x: int) -> list[int]:
        # Both calls are in flight at once.
        return list(await asyncio.gather(self.adder.remote(x), self.multiplier.remote(x)))

    async def fanout_list(self, xs: list[int]) -> list[int]:
        responses = [self.multiplier.remote(x) for x in xs]
        return [await r for r in responses]

    async def pick(self, x: int) -> dict:
        # Dynamic dispatch: choose the handle from the input.
        handle = self.adder if x % 2 == 0 else self.multiplier
        return {"x": x, "route": "adder" if x % 2 == 0 else "multiplier", "result": await handle.remote(x)}

    async def describe(self) -> str:
        # Calling a named method on a downstream handle.
        return await self.multiplier.describe.remote()

    async def __call__(self, request: Request) -> dict:
        body = await request.json()
        x = int(body["x"])
        mode = request.query_params.get("mode", "chain")
        if mode == "chain":
            return {"mode": mode, "result": await self.chain(x)}
        if mode == "fanout":
            return {"mode": mode, "result": await self.fanout(x)}
        return {"mode": mode, **await self.pick(x)}


app = Combiner.bind(Adder.bind(1), Multiplier.bind(3))

ROUTE_PREFIX = "/"

# fmt: off
PROBES = [
    {"kind": "http", "method": "POST", "path": "/", "json": {"x": 4}, "params": {"mode": "chain"}},
    {"kind": "http", "method": "POST", "path": "/", "json": {"x": 4}, "params": {"mode": "fanout"}},
    {"kind": "http", "method": "POST", "path": "/", "json": {"x": 4}, "params": {"mode": "dispatch"}},
    {"kind": "http", "method": "POST", "path": "/", "json": {"x": 5}, "params": {"mode": "dispatch"}},
    {"kind": "handle", "method_name": "chain", "args": [10]},
    {"kind": "handle", "method_name": "fanout", "args": [10]},
    {"kind": "handle", "method_name": "fanout_list", "args": [[1, 2, 3, 4]]},
    {"kind": "handle", "method_name": "pick", "args": [7]},
    {"kind": "handle", "method_name": "pick", "args": [8]},
    {"kind": "handle", "method_name": "describe", "args": []},
]
# fmt: on
