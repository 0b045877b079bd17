"""A model served by 4 replicas, for rolling updates: ``build({"version": "v2"})`` is a new
version (its bound argument changes, so every replica is replaced), rolled out a quarter at a
time (``max_surge_fraction``). Loading takes ``load_s`` seconds, as weights would.

    GET /   -> {"version": "v1", "pid": ...}

``serve_v1.yaml`` and ``serve_v2.yaml`` deploy the two versions; the rollout chaos experiment
(chaos/experiments/rollout_replica_kill.yaml) applies v2 under load and kills replicas while
it rolls out.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from starlette.requests import Request

import serve_core as serve


@serve.deployment(num_replicas=4, max_surge_fraction=0.25, idempotent=True, ray_actor_options={"num_cpus": 0.1})
class Model:
    def __init__(self, version: str, load_s: float = 0.5) -> None:
        time.sleep(load_s)  # loading weights: the rollout must not route here before it is done
        self.version = version

    async def __call__(self, request: Request) -> dict[str, Any]:
        await asyncio.sleep(0.005)
        return {"version": self.version, "pid": os.getpid()}


def build(args: dict[str, Any]) -> Any:
    return Model.bind(str(args.get("version", "v1")), float(args.get("load_s", 0.5)))


app = build({})
