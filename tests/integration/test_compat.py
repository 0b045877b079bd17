"""Apps written for Ray Serve run on serve_core with one import changed, and give the
same answers as Ray Serve on the same inputs, in the same run.

Each app in tests/compat_apps starts with ``from ray import serve``; for serve_core the
harness swaps that single line for ``import serve_core as serve``.
"""

import importlib
import pathlib
import sys
import tempfile
import types
from concurrent.futures import ThreadPoolExecutor, as_completed

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
    # The one import swapped, and the mechanical rename of Ray Serve's submodules
    # (``from ray.serve.handle import ...`` -> ``from serve_core.handle import ...``).
    rest = rest.replace("ray.serve", "serve_core")
    exec(compile("import serve_core as serve\n" + rest, module.__file__, "exec"), module.__dict__)
    cloudpickle.register_pickle_by_value(module)  # replicas cannot import a module made here
    return module


def http(p, base, prefix):
    url = base + prefix.rstrip("/") + p["path"]
    kw = {"params": p.get("params"), "timeout": 30, "headers": p.get("headers")}
    if "data" in p:
        kw["data"] = p["data"]
    elif p.get("json") is not None:
        kw["json"] = p["json"]
    return requests.request(p["method"], url, **kw)


def captured(p, r):
    """Response headers the probe asks for: their value, or only whether they are there."""
    out = {}
    for name, mode in p.get("capture", {}).items():
        value = r.headers.get(name)
        out[name] = value if mode == "value" else value is not None
    return out


def probe(p, base, prefix, handle, module):
    if p["kind"] == "http":
        r = http(p, base, prefix)
        ctype = r.headers.get("content-type", "")
        body = r.json() if ctype.startswith("application/json") else r.text
        answer = {"status": r.status_code, "body": body}
        if "capture" in p:
            answer["headers"] = captured(p, r)
        return answer
    if p["kind"] == "burst":
        # n requests at once: what a full queue answers (load shedding). With "gate_after",
        # the requests wait on a gate file the harness creates once that many have come back
        # (the refused ones), so which ones are refused does not depend on timing.
        with tempfile.TemporaryDirectory() as tmp:
            gate = pathlib.Path(tmp) / "open"
            q = {**p, "params": {**(p.get("params") or {}), **({"gate": str(gate)} if "gate_after" in p else {})}}
            with ThreadPoolExecutor(p["n"]) as pool:
                futures = [pool.submit(http, q, base, prefix) for _ in range(p["n"])]
                if "gate_after" in p:
                    done = 0
                    for _ in as_completed(futures):
                        done += 1
                        if done == p["gate_after"]:
                            gate.touch()
                            break
                responses = [f.result() for f in futures]
        return {
            "statuses": sorted(r.status_code for r in responses),
            "retry_after": sorted({r.headers.get("retry-after", "") for r in responses if r.status_code != 200}),
        }
    if p["kind"] == "call":
        return {"result": getattr(module, p["function"])()}
    h = handle if p["method_name"] == "__call__" else getattr(handle, p["method_name"])
    if p.get("multiplexed_model_id"):
        h = h.options(multiplexed_model_id=p["multiplexed_model_id"])
    if p.get("stream"):
        return {"items": list(h.options(stream=True).remote(*p["args"]))}
    return {"result": h.remote(*p["args"]).result(timeout_s=60)}


def comparable(p, answer):
    mode = p.get("compare", "exact")
    if p["kind"] == "http" and p.get("expect_status", 200) >= 500:
        mode = "status"  # Ray Serve's 500 body is plain text; serve_core's is a JSON error
    if mode == "status":
        return answer["status"]
    if mode == "shed":  # a burst at a full queue: which outcomes, not how many of each (timing decides that)
        ok = answer["statuses"].count(200)
        return sorted(set(answer["statuses"])), answer["retry_after"], 1 <= ok <= p["max_ok"]
    if mode == "keys":
        body = answer.get("body", answer.get("result"))
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        return answer.get("status"), keys, answer.get("headers")
    return answer


def run_probes(backend, serve, module, base):
    prefix = getattr(module, "ROUTE_PREFIX", "/")
    handle = serve.run(module.app, name="compat", route_prefix=prefix)
    answers = [probe(p, base, prefix, handle, module) for p in module.PROBES]
    updated = []
    if hasattr(module, "UPDATED_APP"):
        handle = serve.run(module.UPDATED_APP, name="compat", route_prefix=prefix)
        updated = [probe(p, base, prefix, handle, module) for p in module.UPDATED_PROBES]
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
