from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import logging

from starlette.requests import Request

logger = logging.getLogger("ray.serve")


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Traced:
    """Ray Serve's monitoring guide: every response carries X-Request-ID (the caller's, or
    a fresh one) and the replica sees the same id in its request context."""

    def __call__(self, request: Request) -> dict:
        ctx = serve.context._get_serve_request_context()
        logger.info("handling request %s", ctx.request_id)
        return {"request_id": ctx.request_id, "header": request.headers.get("x-request-id")}

    def fails(self, request: Request) -> None:
        raise ValueError("no")


app = Traced.bind()

ROUTE_PREFIX = "/traced"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None,
     "headers": {"X-Request-ID": "req-abc-123"}, "capture": {"x-request-id": "value"}},
    # No id given: a fresh one is returned (values differ between backends: compare keys).
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None,
     "capture": {"x-request-id": "present"}, "compare": "keys"},
    {"kind": "http", "method": "POST", "path": "/x", "json": {"a": 1}, "params": None,
     "headers": {"X-Request-ID": "second-id"}, "capture": {"x-request-id": "value"}},
]
# fmt: on
