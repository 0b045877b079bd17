"""A config Ray Serve's own `serve build` wrote deploys on serve_core with nothing changed but the
import path, the application answers, and `serve-core config` shows what was deployed.

The apps are tests/compat_apps' (each written for Ray Serve); their serve_core twin is the same
file with the import swapped (test_compat.load), importable under its own module name.
"""

import argparse
import pathlib
import subprocess
import sys

import pytest
import yaml

from serve_core.cli.apps import cmd_config, deploy_config, load_config
from tests.integration.conftest import BASE
from tests.integration.test_compat import http, load

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVE = pathlib.Path(sys.executable).with_name("serve")  # Ray Serve's command line


@pytest.mark.parametrize("name", ["function_query", "composition", "fastapi_ingress"])
def test_a_config_ray_serve_built_deploys_unchanged_but_for_the_import_path(name, serve_core_app, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    p = subprocess.run([str(SERVE), "build", f"tests.compat_apps.{name}:app", "-o", str(path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    theirs = path.read_text()
    twin = load(name, "serve_core")
    ours = theirs.replace(f"import_path: tests.compat_apps.{name}:app", f"import_path: {twin.__name__}:app")
    assert ours != theirs and ours.count("\n") == theirs.count("\n")  # the import path and nothing else
    path.write_text(ours)

    deploy_config(load_config(str(path)))
    prefix = yaml.safe_load(ours)["applications"][0]["route_prefix"]
    for probe in [p for p in twin.PROBES if p["kind"] == "http"]:
        r = http(probe, BASE, prefix)
        assert r.status_code == probe.get("expect_status", 200), (probe, r.status_code, r.text[:200])

    capsys.readouterr()  # what deploying printed
    assert cmd_config(argparse.Namespace(address=None, name=None)) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["applications"][0]["import_path"] == f"{twin.__name__}:app"
    assert shown["proxy_location"] == "EveryNode" and "grpc_options" in shown
