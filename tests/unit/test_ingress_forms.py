"""The forms of @serve.ingress Ray Serve documents, resolved as a replica resolves them,
and HTTP handlers that take no request."""

import asyncio
import json
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI

from serve_core import api
from serve_core.data import asgi
from serve_core.errors import ConfigError


class _Client:
    """GET through an ASGI app without sockets; the JSON body back."""

    def __init__(self, app):
        self.app = app

    def get(self, path, params=None):
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": urlencode(params or {}).encode(), "headers": [], "scheme": "http",
                 "http_version": "1.1", "asgi": {"version": "3.0"}, "server": ("t", 80), "client": ("c", 1)}
        sent = []

        async def send(message):
            sent.append(message)

        asyncio.run(self.app(scope, asgi.body_receiver(b""), send))
        return json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def resolve(cls, *args):
    instance = cls(*args)
    ingress = cls.__serve_core_ingress__
    asgi.bind_class_routes(ingress, cls, instance)
    return _Client(ingress)


def test_a_factory_builds_the_app_in_the_replica():
    built = []

    def build():
        app = FastAPI()
        built.append(app)

        @app.get("/hi")
        def hi(name: str = "x"):
            return {"hi": name}

        return app

    @api.ingress(build)
    class D:
        pass

    assert built == []  # not at decoration: in each replica
    client = resolve(D)
    assert client.get("/hi", params={"name": "ada"}) == {"hi": "ada"} and len(built) == 1


def test_the_function_form_makes_a_class_of_its_own():
    app = FastAPI()

    @app.get("/ping")
    def ping():
        return "pong"

    cls = api.ingress(app)()
    assert resolve(cls).get("/ping") == "pong"


def test_a_class_can_build_its_app_after_its_constructor():
    class D:
        def __init__(self):
            self.word = "late"

        def __serve_build_asgi_app__(self):
            app = FastAPI()

            @app.get("/")
            def root():
                return self.word

            return app

    cls = api.ingress()(D)
    assert resolve(cls).get("/") == "late"


def test_ingress_without_an_app_needs_the_builder_method():
    with pytest.raises(ConfigError, match="__serve_build_asgi_app__"):
        api.ingress()(type("Plain", (), {}))


def test_class_routes_still_bind_to_the_instance():
    app = FastAPI()

    @api.ingress(app)
    class D:
        def __init__(self, n):
            self.n = n

        @app.get("/n")
        def get_n(self):
            return self.n

    assert resolve(D, 7).get("/n") == 7


def test_handlers_get_the_request_only_when_they_take_it():
    class WithNone:
        def __call__(self):
            return 1

    class WithOne:
        def __call__(self, request):
            return 2

    async def takes(request):
        return 3

    def none():
        return 4

    assert [asgi.takes_request(f) for f in (WithNone(), WithOne(), takes, none)] == [False, True, True, False]
    assert asyncio.iscoroutinefunction(takes)
