from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import asyncio


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Ticker:
    """Ray Serve's asyncio guide: a sync constructor runs with the replica's event loop
    running, so it can start background tasks; an HTTP handler may take no request."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.ticks = 0
        self.ticking = asyncio.Event()
        self.task = self.loop.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            self.ticking.set()
            await asyncio.sleep(0.01)

    async def __call__(self) -> dict:
        await self.ticking.wait()
        return {"ticking": self.ticks > 0, "same_loop": asyncio.get_running_loop() is self.loop}

    async def gather(self, n: int) -> list[int]:
        async def square(i: int) -> int:
            await asyncio.sleep(0.001)
            return i * i

        return list(await asyncio.gather(*(square(i) for i in range(n))))

    def blocking(self, x: int) -> int:
        # Sync methods run in a thread pool: they do not block the loop.
        return x * 2

    async def loop_alive(self) -> bool:
        return not self.task.done()


app = Ticker.bind()

ROUTE_PREFIX = "/tick"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
    {"kind": "http", "method": "POST", "path": "/", "json": {"ignored": 1}, "params": None},
    {"kind": "handle", "method_name": "__call__", "args": []},
    {"kind": "handle", "method_name": "gather", "args": [5]},
    {"kind": "handle", "method_name": "blocking", "args": [21]},
    {"kind": "handle", "method_name": "loop_alive", "args": []},
]
# fmt: on
