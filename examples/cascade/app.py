"""A model cascade: a small, cheap model answers when it is confident; otherwise the request
falls through to a large one. Most traffic costs the small model's price, hard cases get the
large model's quality.

    POST /          {"text": ...}   -> {"label": ..., "confidence": ..., "answered_by": "small" | "large"}
    GET  /stats                      -> answers per model, and the share the small model kept
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

import serve_core as serve


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class SmallModel:
    """Sure of itself on short texts only (a stand-in for a distilled model)."""

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        text = payload["text"]
        return {"label": "question" if text.endswith("?") else "statement",
                "confidence": 0.95 if len(text) <= 20 else 0.55}


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class LargeModel:
    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        text = payload["text"].rstrip()
        return {"label": "question" if text.endswith("?") else "statement", "confidence": 0.99}


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Cascade:
    def __init__(self, first: Any, fallback: Any, min_confidence: float = 0.8) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence={min_confidence!r}: give a confidence between 0 and 1")
        self.first, self.fallback, self.min_confidence = first, fallback, min_confidence
        self.answered = {"small": 0, "large": 0}

    async def __call__(self, request: Request) -> Any:
        if request.url.path.endswith("/stats"):
            return self.stats()
        return await self.predict(await request.json())

    async def predict(self, payload: Any) -> dict[str, Any]:
        answer = await self.first.remote(payload)
        if answer.get("confidence", 0.0) >= self.min_confidence:
            self.answered["small"] += 1
            return {**answer, "answered_by": "small"}
        better = await self.fallback.remote(payload)
        self.answered["large"] += 1
        return {**better, "answered_by": "large", "small_confidence": answer.get("confidence")}

    def stats(self) -> dict[str, Any]:
        total = sum(self.answered.values())
        return {"answered": dict(self.answered), "min_confidence": self.min_confidence,
                "kept_by_small": round(self.answered["small"] / total, 4) if total else None}


app = Cascade.bind(SmallModel.bind(), LargeModel.bind())
