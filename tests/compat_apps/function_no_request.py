from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
def hello() -> str:
    # A function deployment whose handler takes no request.
    return "hello"


app = hello.bind()

ROUTE_PREFIX = "/hello"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/anything", "json": None, "params": {"x": "1"}},
    {"kind": "handle", "method_name": "__call__", "args": []},
]
# fmt: on
