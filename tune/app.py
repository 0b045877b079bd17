"""The application of the ready sweeps: one deployment that sleeps ``work_s`` per request (an
application builder, so a serve config's ``args`` set the work). ``build`` is serve_core's,
``build_ray_serve`` the same deployment on Ray Serve."""

from __future__ import annotations

import asyncio
from typing import Any


def _work_class(serve: Any, work_s: float, num_cpus: float) -> Any:
    @serve.deployment(name="TuneWork", ray_actor_options={"num_cpus": num_cpus})
    class TuneWork:
        async def __call__(self, request: Any) -> str:
            await asyncio.sleep(work_s)
            return "ok"

    return TuneWork


def build(args: dict[str, Any]) -> Any:
    import serve_core as serve

    return _work_class(serve, float(args.get("work_s", 0.075)), float(args.get("num_cpus", 0.1))).bind()


def build_ray_serve(args: dict[str, Any]) -> Any:
    from ray import serve

    return _work_class(serve, float(args.get("work_s", 0.075)), float(args.get("num_cpus", 0.1))).bind()
