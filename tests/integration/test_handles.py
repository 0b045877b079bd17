"""Python handles: calls, methods, options, streaming, composition, errors."""

import asyncio

import pytest

import serve_core as serve
from serve_core.errors import NotFoundError, RequestTimeoutError
from tests.integration import apps
from tests.integration.conftest import get, shared_app


def graph():
    add, mul = apps.Adder.bind(1), apps.Multiplier.bind(10)
    return apps.Graph.bind(add, mul, {"add": add, "mul": mul})


@pytest.fixture(scope="module")
def graph_app(serve_instance):
    """The graph as application "g" at /g, deployed once: its deployments keep no state."""
    with shared_app(graph(), "g", "/g") as handle:
        yield handle


@pytest.fixture(scope="module")
def counter_app(serve_instance):
    """A Counter starting at 0 without a route, deployed once for tests that only call its
    methods (none of them counts: only HTTP requests do)."""
    with shared_app(apps.Counter.bind(), "counter", None) as handle:
        yield handle


def test_handle_calls_methods_and_options(serve_core_app):
    h = serve.run(apps.Counter.bind(5), name="c", route_prefix=None)
    assert h.add.remote(2).result() == 7
    assert h.options(method_name="add").remote(3).result() == 8
    assert isinstance(h.pid.remote().result(), int)


def test_user_exception_keeps_its_type(serve_core_app, counter_app):
    h = counter_app
    with pytest.raises(ValueError, match="bad input") as e:
        h.fail.remote("bad input").result()
    assert "ValueError" in str(e.value.__cause__)  # the remote traceback rides along


def test_result_timeout(serve_core_app):
    h = serve.run(apps.Counter.bind(), name="c", route_prefix=None)
    with pytest.raises(RequestTimeoutError):
        h.slow.remote(2).result(timeout_s=0.3)


def test_streaming_generator_method(serve_core_app, counter_app):
    h = counter_app
    assert list(h.options(stream=True).numbers.remote(5)) == [0, 1, 2, 3, 4]

    async def consume():
        return [x async for x in h.options(stream=True, method_name="numbers").remote(3)]

    assert asyncio.run(consume()) == [0, 1, 2]


def test_composition_chain_fanout_dispatch(serve_core_app, graph_app):
    h = graph_app
    assert h.chain.remote(2).result() == 30  # (2 + 1) * 10
    assert h.fanout.remote(2).result() == [3, 20]
    assert h.dispatch.remote("add", 5).result() == 6
    assert h.dispatch.remote("mul", 5).result() == 50
    assert h.sync_chain.remote(1).result() == 20  # .result() inside a sync method
    assert get("/g?x=3").json() == {"chain": 40, "fanout": [4, 30]}


def test_driver_passes_responses_along(serve_core_app, graph_app):
    add = serve.get_deployment_handle("Adder", "g")
    mul = serve.get_deployment_handle("Multiplier", "g")
    assert mul.remote(add.remote(4)).result() == 50


def test_await_from_async_driver_code(serve_core_app):
    h = serve.run(apps.Counter.bind(1), name="c", route_prefix=None)

    async def main():
        return await asyncio.gather(*(h.add.remote(i) for i in range(20)))

    assert asyncio.run(main()) == [i + 1 for i in range(20)]


def test_app_and_deployment_handles_by_name(serve_core_app, graph_app):
    assert serve.get_app_handle("g").chain.remote(0).result() == 10
    with pytest.raises(NotFoundError) as e:
        serve.get_app_handle("nope")
    assert "g" in str(e.value)
    with pytest.raises(NotFoundError):
        serve.get_deployment_handle("Nope", "g")


def test_handles_spread_over_replicas(serve_core_app):
    h = serve.run(apps.Counter.options(num_replicas=3).bind(), name="c", route_prefix=None)

    async def main():
        return await asyncio.gather(*(h.slow.remote(0.05) for _ in range(30)))

    asyncio.run(main())
    pids = {h.pid.remote().result() for _ in range(60)}
    assert len(pids) == 3


def test_argument_the_replica_cannot_unpickle_is_a_clear_error(serve_core_app):
    import sys
    import types

    from serve_core.errors import ServeCoreError

    ghost = types.ModuleType("ghost_module_only_in_the_driver")
    exec("class Thing:\n    pass\n", ghost.__dict__)
    sys.modules[ghost.__name__] = ghost
    h = serve.run(apps.Counter.bind(), name="c", route_prefix=None)
    with pytest.raises(ServeCoreError, match="could not unpickle the request"):
        h.add.remote(ghost.Thing()).result(timeout_s=10)
    assert h.add.remote(1).result() == 1  # the connection is still fine


def test_objects_from_the_driver_script_travel_by_value(serve_core_app, counter_app):
    import dataclasses

    Point = dataclasses.make_dataclass("Point", ["x", "y"])  # noqa: N806 - a class
    Point.__module__ = "__main__"
    assert counter_app.add.remote(10).result() == 10
    echo = serve.run(apps.Echo.bind(), name="e", route_prefix=None)
    assert echo.remote(Point(1, 2)).result() == Point(1, 2)
