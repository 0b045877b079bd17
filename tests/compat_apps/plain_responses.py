from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Responder:
    """How plain (non-FastAPI) return values become HTTP responses."""

    async def __call__(self, request: Request):
        kind = request.query_params.get("kind", "dict")
        if kind == "dict":
            return {"a": 1, "nested": {"b": [1, 2]}}
        if kind == "list":
            return [1, "two", None]
        if kind == "str":
            return "hello"
        if kind == "bytes":
            return b"raw-bytes"
        if kind == "int":
            return 42
        if kind == "none":
            return None
        if kind == "json_response":
            return JSONResponse({"created": True}, status_code=201, headers={"x-app": "compat"})
        if kind == "text_response":
            return PlainTextResponse("teapot", status_code=418)
        if kind == "empty":
            return Response(status_code=204)
        if kind == "echo":
            body = await request.body()
            return {"len": len(body), "content_type": request.headers.get("content-type"), "text": body.decode()}
        raise ValueError(f"unknown kind {kind}")

    def add(self, a: int, b: int = 10) -> int:
        return a + b


app = Responder.bind()

ROUTE_PREFIX = "/"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "dict"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "list"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "str"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "bytes"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "int"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "none"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "json_response"}, "expect_status": 201},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "text_response"}, "expect_status": 418},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "empty"}, "expect_status": 204},
    {"kind": "http", "method": "POST", "path": "/", "json": None, "params": {"kind": "echo"}, "data": "plain body"},
    {"kind": "http", "method": "POST", "path": "/anything", "json": {"k": "v"}, "params": {"kind": "echo"}},
    # An exception in the replica: Ray Serve answers 500 with a plain-text body.
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"kind": "bogus"}, "expect_status": 500},
    {"kind": "handle", "method_name": "add", "args": [1]},
    {"kind": "handle", "method_name": "add", "args": [1, 2]},
]
# fmt: on
