"""An A/B test between two versions of a model: a weighted split, sticky by user, with a
header to force an arm (for QA, or to pin a customer).

    POST /          {"text": ...}, headers x-user-id (sticky), x-ab-arm (force) -> {"arm": ..., "answer": {...}}
    GET  /stats                                                               -> requests per arm

Weights are application args (``{"weights": {"a": 90, "b": 10}}``): a user keeps their arm
while they hold, and when b's weight grows, b's users stay in b.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

import serve_core as serve
from examples.canary.app import Model
from serve_core.errors import ConfigError
from serve_core.patterns.traffic_split import Split


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class ABRouter:
    def __init__(self, arms: dict[str, Any], weights: dict[str, float]) -> None:
        unknown = set(weights) ^ set(arms)
        if unknown:
            raise ConfigError("weights", weights, f"give one weight per arm ({', '.join(arms)}); not {sorted(unknown)}")
        self.arms, self.split = arms, Split(weights)
        self.requests = dict.fromkeys(arms, 0)

    async def __call__(self, request: Request) -> Any:
        if request.url.path.endswith("/stats"):
            return {"requests": self.requests, "shares": self.split.shares}
        try:
            body = await request.json()
            return await self.predict(body, request.headers.get("x-user-id"), request.headers.get("x-ab-arm"))
        except ConfigError as e:
            return JSONResponse({"error": "BadRequest", "message": f"header x-ab-arm: {e}"}, status_code=400)
        except ValueError as e:
            return JSONResponse({"error": "BadRequest", "message": f"the body is not JSON: {e}"}, status_code=400)

    async def predict(self, payload: Any, key: str | None = None, arm: str | None = None) -> dict[str, Any]:
        arm = self.split.assign(key, forced=arm)
        self.requests[arm] += 1
        return {"arm": arm, "answer": await self.arms[arm].remote(payload)}


def build(args: dict[str, Any]) -> Any:
    weights = args.get("weights", {"a": 50, "b": 50})
    arms = {name: Model.options(name=f"Model_{name}").bind(name) for name in weights}
    return ABRouter.bind(arms, weights)


app = build({})
