"""Apps written for Ray Serve run on serve_core with one import changed, and give the
same answers as Ray Serve on the same inputs, in the same run.

Each app in tests/compat_apps starts with ``from ray import serve``; for serve_core the
harness swaps that single line for ``import serve_core as serve``.
"""

import importlib
import pathlib
import sys
import types

import cloudpickle
import pytest
import requests

import serve_core
from tests.integration.conftest import BASE

APPS_DIR = pathlib.Path(__file__).parent.parent / "compat_apps"
APP_NAMES = sorted(p.stem for p in APPS_DIR.glob("*.py") if p.stem != "__init__")
RAY_SERVE_PORT = 18123  # not 8000: Ray Serve shares its port with SO_REUSEPORT


def load(name, backend):
    if backend == "ray_serve":
        return importlib.import_module(f"tests.compat_apps.{name}")
    source = (APPS_DIR / f"{name}.py").read_text()
    first, _, rest = source.partition("\n")
    assert first == "from ray import serve", f"{name}.py must start with the Ray Serve import"
    module = types.ModuleType(f"compat_serve_core_{name}")
    module.__file__ = str(APPS_DIR / f"{name}.py")
    sys.modules[module.__name__] = module
    exec(compile("import serve_core as serve\n" + rest, module.__file__, "exec"), module.__dict__)
    cloudpickle.register_pickle_by_value(module)  # replicas cannot import a module made here
    return module


def probe(p, base, prefix, handle):
    if p["kind"] == "http":
        url = base + prefix.rstrip("/") + p["path"]
        kw = {"params": p.get("params"), "timeout": 30}
        if "data" in p:
            kw["data"] = p["data"]
        elif p.get("json") is not None:
            kw["json"] = p["json"]
        r = requests.request(p["method"], url, **kw)
        ctype = r.headers.get("content-type", "")
        body = r.json() if ctype.startswith("application/json") else r.text
        return {"status": r.status_code, "body": body}
    h = handle if p["method_name"] == "__call__" else getattr(handle, p["method_name"])
    if p.get("stream"):
        return {"items": list(h.options(stream=True).remote(*p["args"]))}
    return {"result": h.remote(*p["args"]).result(timeout_s=60)}


def comparable(p, answer):
    mode = p.get("compare", "exact")
    if p["kind"] == "http" and p.get("expect_status", 200) >= 500:
        mode = "status"  # Ray Serve's 500 body is plain text; serve_core's is a JSON error
    if mode == "status":
        return answer["status"]
    if mode == "keys":
        body = answer.get("body", answer.get("result"))
        return answer.get("status"), sorted(body) if isinstance(body, dict) else type(body).__name__
    return answer


def run_probes(backend, serve, module, base):
    prefix = getattr(module, "ROUTE_PREFIX", "/")
    handle = serve.run(module.app, name="compat", route_prefix=prefix)
    answers = [probe(p, base, prefix, handle) for p in module.PROBES]
    updated = []
    if hasattr(module, "UPDATED_APP"):
        handle = serve.run(module.UPDATED_APP, name="compat", route_prefix=prefix)
        updated = [probe(p, base, prefix, handle) for p in module.UPDATED_PROBES]
    serve.delete("compat")
    for p, a in zip(module.PROBES, answers, strict=True):
        if p["kind"] == "http":
            assert a["status"] == p.get("expect_status", 200), f"{backend}: {p} -> {a}"
    return answers, updated


@pytest.fixture(scope="module")
def ray_serve(ray_cluster):
    from ray import serve as rs

    rs.start(http_options={"host": "127.0.0.1", "port": RAY_SERVE_PORT})
    yield rs
    rs.shutdown()


@pytest.mark.parametrize("name", APP_NAMES)
def test_same_answers_as_ray_serve(name, ray_serve, serve_core_app):
    theirs, theirs_updated = run_probes("ray_serve", ray_serve, load(name, "ray_serve"), f"http://127.0.0.1:{RAY_SERVE_PORT}")
    module = load(name, "serve_core")
    ours, ours_updated = run_probes("serve_core", serve_core, module, BASE)
    for p, a, b in zip(module.PROBES, theirs, ours, strict=True):
        assert comparable(p, b) == comparable(p, a), f"probe {p}: Ray Serve {a} vs serve_core {b}"
    for p, a, b in zip(getattr(module, "UPDATED_PROBES", []), theirs_updated, ours_updated, strict=True):
        assert comparable(p, b) == comparable(p, a), f"after update, probe {p}: Ray Serve {a} vs serve_core {b}"


def test_user_config_update_keeps_the_replica(serve_core_app):
    """Where serve_core is stricter than Ray Serve: serve.run with only user_config
    changed reconfigures in place (Ray Serve restarts the replica on this path)."""
    module = load("torch_user_config", "serve_core")
    h = serve_core.run(module.app, name="tuc", route_prefix=None)
    before = h.info.remote().result()
    h = serve_core.run(module.UPDATED_APP, name="tuc", route_prefix=None)
    after = h.info.remote().result()
    assert after["pid"] == before["pid"]
    assert (before["reconfigure_calls"], after["reconfigure_calls"]) == (1, 2)
    assert after["scale"] == module.NEW_USER_CONFIG["scale"]
