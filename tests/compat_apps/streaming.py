from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from starlette.requests import Request
from starlette.responses import StreamingResponse


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Streamer:
    def numbers(self, n: int):
        # A generator method: called with handle.options(stream=True).numbers.remote(n).
        for i in range(n):
            yield i * i

    async def words(self, n: int):
        # Async generators stream too.
        for i in range(n):
            yield f"word-{i}"

    def __call__(self, request: Request) -> StreamingResponse:
        n = int(request.query_params.get("n", "5"))

        def lines():
            for i in range(n):
                yield f"chunk {i}\n"

        return StreamingResponse(lines(), media_type="text/plain")


app = Streamer.bind()

ROUTE_PREFIX = "/stream"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": {"n": "4"}},
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
    {"kind": "handle", "method_name": "numbers", "args": [5], "stream": True},
    {"kind": "handle", "method_name": "words", "args": [3], "stream": True},
    {"kind": "handle", "method_name": "numbers", "args": [0], "stream": True},
]
# fmt: on
