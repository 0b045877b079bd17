"""The app of the dashboard test: one autoscaling deployment with ~50 ms of async work.

At 50 requests/s about 2.5 requests run at once, so with ``target_ongoing_requests=1`` it
scales from 1 replica up (autoscaler decisions, demand, desired replicas all get series), and
enough requests are in flight for a killed replica to leave retries behind."""

from __future__ import annotations

import asyncio
import os

from starlette.requests import Request

import serve_core as serve


@serve.deployment(
    autoscaling_config={
        "min_replicas": 1, "initial_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 1,
        "upscale_delay_s": 1, "downscale_delay_s": 600, "look_back_period_s": 2,
    },
    ray_actor_options={"num_cpus": 0.1},
    max_ongoing_requests=4,
)
class Scaled:
    async def __call__(self, request: Request) -> int:
        await asyncio.sleep(0.05)
        return os.getpid()


app = Scaled.bind()
