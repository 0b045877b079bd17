"""A canary in front of two versions of a model: the canary's share of traffic climbs step by
step while its answers meet the SLO, and drops to 0 for good the moment they do not.

    POST /          {"text": ...}, header x-user-id (sticky) -> {"arm": "stable" | "canary", "answer": {...}}
    GET  /status                                             -> state, share, step, reason

Both versions are one ``Model`` class; its ``user_config`` ({"error_rate", "delay_ms"})
breaks a version in place, which is how the tests and the chaos experiment make the canary
fail its SLO. ``build`` takes the policy and the canary's faults as application args.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

import serve_core as serve
from serve_core.patterns.canary import Canary, CanaryPolicy


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Model:
    def __init__(self, version: str) -> None:
        self.version, self.error_rate, self.delay_ms = version, 0.0, 0.0

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.error_rate = float(config.get("error_rate", 0.0))
        self.delay_ms = float(config.get("delay_ms", 0.0))

    async def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)
        if random.random() < self.error_rate:
            raise RuntimeError(f"model {self.version} failed")
        text = str(payload.get("text", ""))
        return {"version": self.version, "label": "positive" if "good" in text else "negative"}


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.1})
class CanaryRouter:
    """One replica: the canary's state (share, step answers) lives here."""

    def __init__(self, stable: Any, canary: Any, policy: dict[str, Any] | None = None, name: str = "canary") -> None:
        self.arms = {"stable": stable, "canary": canary}
        self.canary = Canary(CanaryPolicy(**(policy or {})), name)
        self._ticker: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:  # promotion is due on time too, between requests
            await asyncio.sleep(1.0)
            self.canary.tick()

    async def __call__(self, request: Request) -> Any:
        if request.url.path.endswith("/status"):
            return self.status()
        try:
            body = await request.json()
        except ValueError as e:
            return JSONResponse({"error": "BadRequest", "message": f"the body is not JSON: {e}"}, status_code=400)
        return await self.predict(body, request.headers.get("x-user-id"))

    async def predict(self, payload: Any, key: str | None = None) -> dict[str, Any]:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        arm = self.canary.route(key)
        start = time.perf_counter()
        try:
            answer = await self.arms[arm].remote(payload)
        except Exception:
            self.canary.record(arm, False, 0.0)
            raise
        self.canary.record(arm, True, (time.perf_counter() - start) * 1000)
        return {"arm": arm, "answer": answer}

    def status(self) -> dict[str, Any]:
        return self.canary.status()


def build(args: dict[str, Any]) -> Any:
    """Application args: ``policy`` (CanaryPolicy's fields), ``name``, and ``canary_config``
    (the canary Model's user_config: changing it alone reconfigures in place)."""
    canary = Model.options(name="Canary", user_config=args.get("canary_config", {"error_rate": 0.0}))
    return CanaryRouter.bind(Model.options(name="Stable").bind("v1"), canary.bind("v2"),
                             policy=args.get("policy"), name=args.get("name", "canary"))


app = build({})
