from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
def greet(request: Request) -> dict:
    params = request.query_params
    name = params.get("name", "world")
    times = int(params.get("times", "1"))
    return {
        "greeting": " ".join([f"hello {name}"] * times),
        "tags": params.getlist("tag"),
        "path": request.url.path,
        "method": request.method,
    }


app = greet.bind()

ROUTE_PREFIX = "/greet"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
    # "" hits the bare prefix ("/greet", no trailing slash).
    {"kind": "http", "method": "GET", "path": "", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/sub/path", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"name": "ada", "times": "2"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"name": "bob", "tag": ["a", "b"]}},
    {"kind": "http", "method": "POST", "path": "/", "json": {"ignored": True}, "params": {"name": "eve"}},
]
# fmt: on
