"""Shadowing: every request is answered by the live model, and a copy goes to a candidate
whose answer is recorded next to the live one and compared, never returned. The agreement
rate tells whether the candidate is ready for a canary.

    POST /          {"text": ...}   -> the live model's answer (the client never sees the candidate's)
    GET  /shadow                     -> requests shadowed, compared, agreeing, candidate errors, agreement rate

The candidate runs after the live answer is on its way (its latency and errors never touch the
client), at most ``max_in_flight`` at a time: past that, copies are dropped and counted, so a
slow candidate cannot pile up work. With ``record_path`` every comparison is a JSON line there.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

import serve_core as serve


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Classifier:
    """A stand-in model: labels by text length, with its own threshold."""

    def __init__(self, version: str, threshold: int) -> None:
        self.version, self.threshold = version, threshold

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"version": self.version, "label": "long" if len(payload["text"]) >= self.threshold else "short"}


def same_answer(live: Any, candidate: Any, key: str | None) -> bool:
    """Answers agree on ``key`` (the label), or whole when there is no key."""
    if key is not None and isinstance(live, dict) and isinstance(candidate, dict):
        return live.get(key) == candidate.get(key)
    return bool(live == candidate)


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.1})
class Shadow:
    def __init__(self, live: Any, candidate: Any, compare_key: str | None = "label",
                 max_in_flight: int = 16, record_path: str | None = None) -> None:
        self.live, self.candidate, self.key = live, candidate, compare_key
        self.max_in_flight, self.record_path = max_in_flight, record_path
        self.in_flight = 0
        self.counts = {"shadowed": 0, "compared": 0, "agreed": 0, "candidate_errors": 0, "dropped": 0}
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, request: Request) -> Any:
        if request.url.path.endswith("/shadow"):
            return await self.stats()
        return await self.predict(await request.json())

    async def predict(self, payload: Any) -> Any:
        answer = await self.live.remote(payload)
        if self.in_flight >= self.max_in_flight:
            self.counts["dropped"] += 1
        else:
            self.in_flight += 1
            self.counts["shadowed"] += 1
            task = asyncio.get_running_loop().create_task(self._compare(payload, answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return answer

    async def _compare(self, payload: Any, live: Any) -> None:
        try:
            candidate = await self.candidate.remote(payload)
        except Exception as e:  # the candidate's failure is a finding, never the client's problem
            self.counts["candidate_errors"] += 1
            self._record({"payload": payload, "live": live, "error": str(e).splitlines()[0]})
            return
        finally:
            self.in_flight -= 1
        agreed = same_answer(live, candidate, self.key)
        self.counts["compared"] += 1
        self.counts["agreed"] += int(agreed)
        if not agreed:
            self._record({"payload": payload, "live": live, "candidate": candidate})

    def _record(self, doc: dict[str, Any]) -> None:
        if self.record_path:
            with open(self.record_path, "a") as f:
                f.write(json.dumps(doc) + "\n")

    async def stats(self) -> dict[str, Any]:
        if self._tasks:  # comparisons still running are waited for, so the figures add up
            await asyncio.wait(set(self._tasks), timeout=10)
        c = self.counts
        return {**c, "agreement": round(c["agreed"] / c["compared"], 4) if c["compared"] else None}


app = Shadow.bind(Classifier.bind("v1", 10), Classifier.options(name="Candidate").bind("v2", 12))
