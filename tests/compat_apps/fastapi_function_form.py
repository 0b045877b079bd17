from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from fastapi import FastAPI

api = FastAPI()


@api.get("/ping")
def ping() -> str:
    return "pong"


@api.get("/items/{item_id}")
def item(item_id: int) -> dict:
    return {"item_id": item_id}


# A standalone FastAPI app with no class of its own (Ray Serve's ingress docs).
app = serve.deployment(serve.ingress(api)()).options(ray_actor_options={"num_cpus": 0.1}).bind()

ROUTE_PREFIX = "/fn"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/ping", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/items/7", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/items/x", "json": None, "params": None, "expect_status": 422},
]
# fmt: on
