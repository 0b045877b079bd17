"""The app of the cluster fault tests: ~5 ms of async work, answers the replica's pid.

``app`` runs 2 replicas, ``app3`` the same deployment with 3 (a scale change)."""

from __future__ import annotations

import asyncio
import os

from starlette.requests import Request

import serve_core as serve


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0.1})
class Work:
    async def __call__(self, request: Request) -> int:
        await asyncio.sleep(0.005)
        return os.getpid()


app = Work.bind()
app3 = Work.options(num_replicas=3).bind()
