"""The smallest deployment: a plain function. GET /?name=Ada -> {"message": "Hello, Ada!"}."""

from __future__ import annotations

import serve_core as serve
from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
def hello(request: Request) -> dict[str, str]:
    name = request.query_params.get("name", "world")
    return {"message": f"Hello, {name}!"}


app = hello.bind()
