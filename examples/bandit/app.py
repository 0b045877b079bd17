"""A bandit router in front of two versions of a model: every request goes to the arm the
policy picks; the application reports a reward for the answer later (POST /reward, or the
handle's ``reward`` method), and traffic moves to the arm that earns more.

    POST /            {"text": ...}            -> {"arm": "v1", "answer": {...}}
    POST /reward      {"arm": "v1", "reward": 1}
    GET  /stats                                -> pulls, rewards and mean reward per arm

The policy's state lives in the router's one replica (``num_replicas=1``): more replicas
would each learn on their own share of the rewards.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

import serve_core as serve
from serve_core.errors import ConfigError
from serve_core.patterns.bandit import Bandit


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Sentiment:
    """A stand-in model: its version's name and a fixed score."""

    def __init__(self, version: str, score: float) -> None:
        self.version, self.score = version, score

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"version": self.version, "label": "positive" if self.score >= 0.5 else "negative", "score": self.score}


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.1})
class BanditRouter:
    def __init__(self, arms: dict[str, Any], policy: str = "thompson", epsilon: float = 0.1, seed: int | None = 0) -> None:
        self.arms = arms
        self.bandit = Bandit(list(arms), policy=policy, epsilon=epsilon, seed=seed)

    async def __call__(self, request: Request) -> Any:
        if request.url.path.endswith("/stats"):
            return self.stats()
        try:
            body = await request.json()
            if request.url.path.endswith("/reward"):
                self.reward(body["arm"], body["reward"])
                return {"ok": True}
        except (ValueError, KeyError, TypeError, ConfigError) as e:
            return JSONResponse({"error": "BadRequest", "message": str(e)}, status_code=400)
        return await self.predict(body)

    async def predict(self, payload: Any) -> dict[str, Any]:
        arm = self.bandit.choose()
        return {"arm": arm, "answer": await self.arms[arm].remote(payload)}

    def reward(self, arm: str, value: float) -> None:
        self.bandit.reward(arm, value)

    def stats(self) -> dict[str, Any]:
        return {"policy": self.bandit.policy, "arms": self.bandit.summary()}


app = BanditRouter.bind({"v1": Sentiment.bind("v1", 0.7), "v2": Sentiment.options(name="Sentiment2").bind("v2", 0.9)})
