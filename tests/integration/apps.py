"""Deployments shared by the integration tests (importable by replicas)."""

import asyncio
import os
import time

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import StreamingResponse

import serve_core as serve


@serve.deployment
def hello(request: Request):
    return {"hello": request.query_params.get("name", "world")}


@serve.deployment
class Counter:
    def __init__(self, start: int = 0):
        self.n = start

    async def __call__(self, request: Request):
        self.n += 1
        return {"n": self.n, "pid": os.getpid()}

    def add(self, x: int) -> int:
        return self.n + x

    async def pid(self) -> int:
        return os.getpid()

    def fail(self, msg: str):
        raise ValueError(msg)

    async def slow(self, s: float) -> float:
        await asyncio.sleep(s)
        return s

    def numbers(self, n: int):
        yield from range(n)


@serve.deployment
class Raises:
    async def __call__(self, request: Request):
        raise RuntimeError("model exploded")


@serve.deployment
class ParsesJson:
    async def __call__(self, request: Request):
        body = await request.json()
        return {"keys": sorted(body)}


@serve.deployment(max_ongoing_requests=1, max_queued_requests=1)
class Busy:
    async def __call__(self, request: Request):
        await asyncio.sleep(float(request.query_params.get("s", "1")))
        return "done"


@serve.deployment
class Sleeper:
    def __init__(self):
        self.cancelled = 0
        self.finished = 0

    async def __call__(self, request: Request):
        try:
            await asyncio.sleep(float(request.query_params.get("s", "10")))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return "woke"

    def counts(self):
        return {"cancelled": self.cancelled, "finished": self.finished}


@serve.deployment
class Streamer:
    async def __call__(self, request: Request):
        n = int(request.query_params.get("n", "5"))
        delay = float(request.query_params.get("delay", "0.2"))

        async def gen():
            for i in range(n):
                yield f"chunk-{i}\n"
                await asyncio.sleep(delay)

        return StreamingResponse(gen(), media_type="text/plain")


class Item(BaseModel):
    name: str
    price: float


api = FastAPI()


@serve.deployment
@serve.ingress(api)
class Shop:
    def __init__(self, tax: float = 0.1):
        self.tax = tax

    @api.get("/items/{item_id}")
    def read(self, item_id: int, q: str | None = None):
        return {"item_id": item_id, "q": q}

    @api.post("/items")
    def create(self, item: Item):
        return {"name": item.name, "total": round(item.price * (1 + self.tax), 2)}


@serve.deployment(user_config={"weight": 1})
class Weighted:
    def __init__(self):
        self.weight = None
        self.reconfigures = 0

    def reconfigure(self, config):
        self.weight = config["weight"]
        self.reconfigures += 1

    def __call__(self, request: Request):
        return {"weight": self.weight, "reconfigures": self.reconfigures, "pid": os.getpid()}


@serve.deployment(health_check_period_s=0.5, health_check_timeout_s=2)
class Flaky:
    def __init__(self):
        self.healthy = True

    def make_unhealthy(self):
        self.healthy = False
        return os.getpid()

    def check_health(self):
        if not self.healthy:
            raise RuntimeError("unhealthy on purpose")

    def __call__(self, request: Request = None):
        return os.getpid()


@serve.deployment(graceful_shutdown_timeout_s=10, graceful_shutdown_wait_loop_s=0.1)
class Draining:
    async def __call__(self, request: Request):
        await asyncio.sleep(float(request.query_params.get("s", "1.5")))
        return "finished"


@serve.deployment
class Broken:
    def __init__(self):
        raise RuntimeError("cannot load weights")


@serve.deployment
class Batcher:
    def __init__(self):
        self.sizes = []

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.1)
    async def triple(self, xs):
        self.sizes.append(len(xs))
        return [x * 3 for x in xs]

    async def __call__(self, request: Request):
        return await self.triple(int(request.query_params["x"]))

    def batch_sizes(self):
        return self.sizes


@serve.deployment
class Adder:
    def __init__(self, k: int):
        self.k = k

    def __call__(self, x: int) -> int:
        return x + self.k


@serve.deployment
class Multiplier:
    def __init__(self, k: int):
        self.k = k

    def __call__(self, x: int) -> int:
        return x * self.k


@serve.deployment
class Graph:
    """Chaining, fan-out, dynamic dispatch and passing responses along."""

    def __init__(self, add, mul, by_name):
        self.add, self.mul, self.by_name = add, mul, by_name

    async def chain(self, x: int) -> int:
        return await self.mul.remote(self.add.remote(x))  # response passed unresolved

    async def fanout(self, x: int) -> list:
        return list(await asyncio.gather(self.add.remote(x), self.mul.remote(x)))

    async def dispatch(self, name: str, x: int) -> int:
        return await self.by_name[name].remote(x)

    def sync_chain(self, x: int) -> int:
        return self.mul.remote(self.add.remote(x)).result()

    async def __call__(self, request: Request):
        x = int(request.query_params.get("x", "1"))
        return {"chain": await self.chain(x), "fanout": await self.fanout(x)}


@serve.deployment(ray_actor_options={"num_cpus": 0, "num_gpus": 0.5}, num_replicas=2)
class HalfGpu:
    def __call__(self, request: Request):
        import ray

        return {"gpus": ray.get_gpu_ids(), "pid": os.getpid()}


@serve.deployment(max_ongoing_requests=100)
class Noop:
    async def __call__(self, request: Request):
        return "ok"

    async def pid(self):
        return os.getpid()


@serve.deployment
class Slow:
    async def __call__(self, request: Request):
        await asyncio.sleep(10)
        return "late"


def slow_start_app():
    return Counter.bind()


def now():
    return time.time()


@serve.deployment
class Echo:
    def __call__(self, value):
        return value


@serve.deployment(num_replicas=2)
class Work:
    """A few milliseconds of work per request, so replicas hold requests in flight."""

    async def __call__(self, request: Request):
        await asyncio.sleep(float(request.query_params.get("ms", "5")) / 1000)
        return os.getpid()

    def pid(self):
        return os.getpid()

    async def slow_pid(self, s: float) -> int:
        await asyncio.sleep(s)
        return os.getpid()


@serve.deployment(
    autoscaling_config={
        "min_replicas": 0, "max_replicas": 3, "target_ongoing_requests": 1, "upscale_delay_s": 0,
        "downscale_delay_s": 1, "downscale_to_zero_delay_s": 2, "look_back_period_s": 1,
    },
    ray_actor_options={"num_cpus": 0.1},
    max_ongoing_requests=2,
)
class Elastic:
    async def __call__(self, request: Request):
        await asyncio.sleep(float(request.query_params.get("s", "0")))
        return os.getpid()


@serve.deployment(
    autoscaling_config={"min_replicas": 0, "max_replicas": 1, "downscale_to_zero_delay_s": 60},
    ray_actor_options={"num_cpus": 0.1},
    max_queued_requests=3,
)
class SlowStart:
    """Takes 1.5 s to construct, so requests to it at zero replicas wait in the caller's
    queue (short enough that start-up plus construction stays inside the 5 s request timeout
    on a busy machine)."""

    def __init__(self):
        time.sleep(1.5)

    async def __call__(self, request: Request):
        return os.getpid()


@serve.deployment(
    autoscaling_config={
        "min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 1, "upscale_delay_s": 0,
        "downscale_delay_s": 2, "look_back_period_s": 2,
    },
    ray_actor_options={"num_cpus": 0.1},
    max_ongoing_requests=4,
)
class Loaded:
    async def __call__(self, request: Request):
        await asyncio.sleep(0.1)
        return os.getpid()


@serve.deployment(num_replicas=2)
class Multiplexed:
    """Up to two models per replica, each 'loaded' in 50 ms; answers say who served what."""

    def __init__(self):
        self.loads = []

    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id: str):
        self.loads.append(model_id)
        await asyncio.sleep(0.05)
        return {"weights": model_id}

    async def __call__(self, request: Request):
        model = await self.get_model(serve.get_multiplexed_model_id())
        return {"model": model["weights"], "pid": os.getpid(), "loads": list(self.loads)}

    async def predict(self, x: int):
        model = await self.get_model(serve.get_multiplexed_model_id())
        return {"model": model["weights"], "pid": os.getpid(), "loads": list(self.loads), "x": x}


@serve.deployment(num_replicas=2)
class Scorer:
    """Batch scoring's target: doubles each item's x, and logs every id it scores to a file
    (so a test can tell whether anything finished was scored again after a restart)."""

    def __init__(self, log_path: str):
        self.log_path = log_path

    async def __call__(self, items: list):
        await asyncio.sleep(0.05)
        with open(self.log_path, "a") as f:
            f.write("".join(f"{it['id']}\n" for it in items))
        return [{"double": it["x"] * 2} for it in items]

    async def short(self, items: list):
        return items[1:]  # one result too few: a batch error, never a wrong result


@serve.deployment(max_surge_fraction=0.5)
class Versioned:
    """A model version whose rollout can fail: in its constructor or its first health check."""

    def __init__(self, version: str, fail_start: bool = False, unhealthy: bool = False):
        if fail_start:
            raise RuntimeError(f"version {version} cannot load its weights")
        self.version, self.unhealthy = version, unhealthy

    def check_health(self):
        if self.unhealthy:
            raise RuntimeError(f"version {self.version} is unhealthy")

    async def __call__(self, request: Request = None):
        return {"version": self.version, "pid": os.getpid()}


@serve.deployment
class Sizes:
    """Sizes of what comes in; replies of any size (the frame cap tests)."""

    async def __call__(self, request: Request):
        return {"size": len(await request.body())}

    def blow_up(self, n: int) -> bytes:
        return b"y" * n


@serve.deployment
class CallsFail:
    """An HTTP ingress whose nested handle call raises (error detail tests)."""

    def __init__(self, counter):
        self.counter = counter

    async def __call__(self, request: Request):
        return await self.counter.fail.remote("deep trouble\nsecond line of detail")
