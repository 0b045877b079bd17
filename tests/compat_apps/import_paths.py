from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from ray.serve.config import AutoscalingConfig, HTTPOptions
from ray.serve.exceptions import BackPressureError, RayServeException
from ray.serve.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator
from ray.serve.schema import ApplicationStatusOverview, ServeStatus


@serve.deployment(
    ray_actor_options={"num_cpus": 0.1},
    autoscaling_config=AutoscalingConfig(min_replicas=1, max_replicas=2),
)
class Leaf:
    def value(self, x) -> int:
        return x + 1 if isinstance(x, int) else -1

    def count(self, n: int):
        yield from range(n)


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Root:
    """Names imported from where Ray Serve keeps them (ray.serve.handle, .schema, .config,
    .exceptions), checked by type."""

    def __init__(self, leaf: DeploymentHandle) -> None:
        self.leaf = leaf

    async def types(self) -> dict:
        response = self.leaf.value.remote(1)
        stream = self.leaf.options(stream=True).count.remote(3)
        return {
            "handle": isinstance(self.leaf, DeploymentHandle),
            "response": isinstance(response, DeploymentResponse),
            "generator": isinstance(stream, DeploymentResponseGenerator),
            "value": await response,
            "items": [i async for i in stream],
            "backpressure_is_serve_error": issubclass(BackPressureError, RayServeException),
        }

    async def nested(self) -> dict:
        # A response inside a list cannot be passed on: a clear RayServeException.
        try:
            await self.leaf.value.remote([self.leaf.value.remote(1)])
        except RayServeException as e:
            return {"raised": True, "says_top_level": "top-level" in str(e) or "top level" in str(e)}
        return {"raised": False}


app = Root.bind(Leaf.bind())

ROUTE_PREFIX = None


def status_types() -> dict:
    st = serve.status()
    overview = st.applications["compat"]
    return {
        "status": isinstance(st, ServeStatus),
        "overview": isinstance(overview, ApplicationStatusOverview),
        "running": overview.status == "RUNNING",
        "deployments": sorted(overview.deployments),
        "http_default_port": HTTPOptions().port,
    }


# fmt: off
PROBES = [
    {"kind": "handle", "method_name": "types", "args": []},
    {"kind": "handle", "method_name": "nested", "args": []},
    {"kind": "call", "function": "status_types"},
]
# fmt: on
