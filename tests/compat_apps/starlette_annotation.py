from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import starlette


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Annotated:
    # `starlette.requests` after a bare `import starlette`: importing serve makes it there.
    async def __call__(self, request: starlette.requests.Request) -> dict:
        return {"path": request.url.path, "q": request.query_params.get("q")}


app = Annotated.bind()

ROUTE_PREFIX = "/annotated"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/x", "json": None, "params": {"q": "1"}},
]
# fmt: on
