"""The smallest deployment: a plain function. GET /?name=Ada -> {"message": "Hello, Ada!"}."""

from __future__ import annotations

from starlette.requests import Request

import serve_core as serve


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
def hello(request: Request) -> dict[str, str]:
    name = request.query_params.get("name", "world")
    return {"message": f"Hello, {name}!"}


app = hello.bind()
