from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class ModelHost:
    """Ray Serve's multiplexing guide: models loaded on first use, least recently used
    evicted past max_num_models_per_replica; the id from a header or handle option."""

    def __init__(self) -> None:
        self.loads: list[str] = []

    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id: str) -> dict:
        self.loads.append(model_id)
        return {"id": model_id, "scale": len(model_id)}

    async def __call__(self, request: Request) -> dict:
        model_id = serve.get_multiplexed_model_id()
        model = await self.get_model(model_id)
        return {"model": model["id"], "y": int(request.query_params["x"]) * model["scale"]}

    async def predict(self, x: int) -> dict:
        model = await self.get_model(serve.get_multiplexed_model_id())
        return {"model": model["id"], "y": x * model["scale"]}

    def loaded(self) -> list[str]:
        return list(self.loads)


app = ModelHost.bind()

ROUTE_PREFIX = "/models"

H = "serve_multiplexed_model_id"
# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"x": "2"}, "headers": {H: "a"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"x": "2"}, "headers": {H: "bb"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"x": "3"}, "headers": {H: "a"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"x": "1"}, "headers": {H: "ccc"}},
    {"kind": "handle", "method_name": "predict", "args": [5], "multiplexed_model_id": "bb"},
    {"kind": "handle", "method_name": "loaded", "args": []},
]
# fmt: on
