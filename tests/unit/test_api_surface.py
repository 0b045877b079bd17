"""serve_core's public API against the installed Ray Serve's, name by name and parameter
by parameter (introspection only: Ray Serve is imported, never started)."""

import importlib
import pathlib
import sys

import pytest

from tests.api_surface import surface

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def problems():
    return surface.check()


def test_every_difference_from_ray_serve_is_decided(problems):
    assert problems == [], "\n".join(problems)


def test_a_new_ray_serve_name_nobody_decided_about_fails(monkeypatch):
    real = surface.public_names

    def with_new(module_name):
        names = real(module_name)
        return names + ["brand_new_api"] if module_name == "ray.serve" else names

    import ray.serve

    monkeypatch.setattr(surface, "public_names", with_new)
    monkeypatch.setattr(ray.serve, "brand_new_api", lambda: None, raising=False)
    assert "undecided: serve.brand_new_api (missing: serve_core has no brand_new_api)" in surface.check()


def test_readme_table_is_the_generated_one():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        table = importlib.import_module("supported_table")
    finally:
        sys.path.pop(0)
    readme = (ROOT / "README.md").read_text()
    assert table.render(readme) == readme, "README.md's table is stale: run python scripts/supported_table.py"


@pytest.mark.parametrize("module,names", [
    ("serve_core.handle", ["DeploymentHandle", "DeploymentResponse", "DeploymentResponseGenerator"]),
    ("serve_core.schema", ["ServeStatus", "ApplicationStatusOverview", "DeploymentStatusOverview", "ApplicationStatus"]),
    ("serve_core.config", ["AutoscalingConfig", "HTTPOptions", "BackpressureConfig", "ProxyLocation"]),
    ("serve_core.exceptions", ["RayServeException", "BackPressureError", "RequestCancelledError"]),
])
def test_names_are_where_ray_serve_keeps_them(module, names):
    mod = importlib.import_module(module)
    assert [n for n in names if not hasattr(mod, n)] == []


def test_import_makes_starlette_requests_available():
    import subprocess

    # A fresh interpreter: in this one something else may have imported starlette.requests.
    code = "import serve_core, starlette; print(starlette.requests.Request.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "Request", out.stderr


def test_a_nested_response_names_the_fix():
    import pickle

    from serve_core.errors import ServeCoreError
    from serve_core.handle import DeploymentResponse

    response = DeploymentResponse.__new__(DeploymentResponse)
    with pytest.raises(ServeCoreError, match="top-level argument"):
        pickle.dumps([response])
