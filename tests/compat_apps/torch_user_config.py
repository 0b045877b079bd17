from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

import os

import torch
from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 0.2}, user_config={"scale": 2.0})
class ScaledLinear:
    """A 3 -> 2 linear model whose weights are set from user_config in place."""

    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.model = torch.nn.Linear(3, 2, bias=False)
        self.scale = 0.0
        self.reconfigure_calls = 0

    def reconfigure(self, config: dict) -> None:
        # Called right after __init__, and again on each in-place user_config update.
        self.scale = float(config["scale"])
        base = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
        with torch.no_grad():
            self.model.weight.copy_(base * self.scale)
        self.reconfigure_calls += 1

    def predict(self, x: list[float]) -> list[float]:
        with torch.no_grad():
            return [round(v, 6) for v in self.model(torch.tensor(x, dtype=torch.float32)).tolist()]

    def info(self) -> dict:
        return {"pid": os.getpid(), "scale": self.scale, "reconfigure_calls": self.reconfigure_calls}

    async def __call__(self, request: Request) -> dict:
        if request.method == "GET":
            return self.info()
        return {"scale": self.scale, "output": self.predict((await request.json())["x"])}


app = ScaledLinear.bind()

# Apply NEW_USER_CONFIG to the running app, then run UPDATED_PROBES: outputs scale
# by 1.5 and, for an in-place update, the PID stays the same and
# reconfigure_calls goes 1 -> 2. In Ray Serve the in-place path is a declarative
# config update of this import path ("deployments": [{"name": DEPLOYMENT_NAME,
# "user_config": NEW_USER_CONFIG}]); an imperative ``serve.run(UPDATED_APP)``
# gets a fresh random code version and restarts the replica (new PID).
NEW_USER_CONFIG = {"scale": 3.0}
DEPLOYMENT_NAME = "ScaledLinear"
UPDATED_APP = ScaledLinear.options(user_config=NEW_USER_CONFIG).bind()

ROUTE_PREFIX = "/model"

# fmt: off
PROBES = [
    {"kind": "http", "method": "POST", "path": "/", "json": {"x": [1.0, 2.0, 3.0]}, "params": None},
    {"kind": "handle", "method_name": "predict", "args": [[1.0, 1.0, 1.0]]},
    # PIDs differ between runs: compare keys only; the harness checks the PID is
    # unchanged between PROBES and UPDATED_PROBES.
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None, "compare": "keys"},
    {"kind": "handle", "method_name": "info", "args": [], "compare": "keys"},
]
# fmt: on

UPDATED_PROBES = PROBES
