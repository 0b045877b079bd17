from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from fastapi import FastAPI


def build_app() -> FastAPI:
    """Called in each replica (Ray Serve's ingress builder form)."""
    api = FastAPI()

    @api.get("/hello")
    def hello(name: str = "world") -> dict:
        return {"hello": name}

    @api.post("/sum")
    def total(values: list[int]) -> int:
        return sum(values)

    return api


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
@serve.ingress(build_app)
class FactoryIngress:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def get_tag(self) -> str:
        return self.tag


app = FactoryIngress.bind("v1")

ROUTE_PREFIX = "/factory"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/hello", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/hello", "json": None, "params": {"name": "ada"}},
    {"kind": "http", "method": "POST", "path": "/sum", "json": [1, 2, 3], "params": None},
    {"kind": "http", "method": "GET", "path": "/missing", "json": None, "params": None, "expect_status": 404},
    {"kind": "handle", "method_name": "get_tag", "args": []},
]
# fmt: on
