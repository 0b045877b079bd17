from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from pydantic import BaseModel
from ray.serve import Application
from starlette.requests import Request


class GreeterArgs(BaseModel):
    greeting: str = "hello"
    times: int = 1


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Greeter:
    def __init__(self, greeting: str, times: int) -> None:
        self.greeting, self.times = greeting, times

    def __call__(self, request: Request) -> str:
        name = request.query_params.get("name", "world")
        return " ".join([f"{self.greeting} {name}"] * self.times)


def app_builder(args: GreeterArgs) -> Application:
    """Ray Serve's app builder guide: typed arguments build the application."""
    return Greeter.bind(args.greeting, args.times)


app = app_builder(GreeterArgs(greeting="hi", times=2))

ROUTE_PREFIX = "/"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"name": "ada"}},
]
# fmt: on
