from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import asyncio
import os

from ray.serve.config import BackpressureConfig
from starlette.requests import Request


@serve.deployment(
    ray_actor_options={"num_cpus": 0.1},
    max_ongoing_requests=1,
    max_queued_requests=1,
    backpressure_config=BackpressureConfig(status_code=429, retry_after_s=2.5),
)
class Slow:
    """Ray Serve's load shedding guide: one request runs, one waits, the rest are refused
    at once with 429 and Retry-After (rounded up). A request with a ``gate`` waits until
    that file exists (the harness creates it once the refusals are back)."""

    async def __call__(self, request: Request) -> str:
        gate = request.query_params.get("gate")
        while gate and not os.path.exists(gate):
            await asyncio.sleep(0.02)
        return "done"


app = Slow.bind()

ROUTE_PREFIX = "/slow"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
    # Ray Serve refused 2 or 3 of the 4 from run to run (how soon its proxy learns of the first
    # request): compare that both accept one or two and refuse the rest with 429 and Retry-After.
    {"kind": "burst", "method": "GET", "path": "/", "params": {}, "n": 4, "gate_after": 2, "compare": "shed", "max_ok": 2},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
]
# fmt: on
