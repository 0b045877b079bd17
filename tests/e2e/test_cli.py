"""The serve-core command line against a real `ray start` cluster."""

import socket

import requests
import yaml

from tests.e2e.conftest import free_port, serve_core
from tests.waiting import wait_for

PORT = 8350


def url(path):
    return f"http://127.0.0.1:{PORT}{path}"


def test_run_status_deploy_shutdown(ray_head, tmp_path):
    p = serve_core("run", "examples.function_app.app:app", "--address", ray_head, "--port", str(PORT), "--non-blocking", check=True)
    assert "is running at" in p.stdout
    assert requests.get(url("/"), params={"name": "Ada"}, timeout=10).json() == {"message": "Hello, Ada!"}

    st = yaml.safe_load(serve_core("status", "--address", ray_head, check=True).stdout)
    assert st["applications"]["default"]["status"] == "RUNNING"

    config = {
        "http_options": {"port": PORT},
        "applications": [
            {"name": "hello", "route_prefix": "/hello", "import_path": "examples.function_app.app:app",
             "deployments": [{"name": "hello", "num_replicas": 2}]},
            {"name": "sk", "route_prefix": "/sk", "import_path": "examples.sklearn_pipeline.app:app"},
        ],
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    serve_core("deploy", str(path), "--address", ray_head, check=True)
    assert requests.get(url("/hello"), params={"name": "Bo"}, timeout=10).json() == {"message": "Hello, Bo!"}
    r = requests.post(url("/sk"), json={"features": [[0.1, -1.2, 0.7, 2.0]]}, timeout=30)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1
    st = yaml.safe_load(serve_core("status", "--address", ray_head, check=True).stdout)
    assert st["applications"]["hello"]["deployments"]["hello"]["replicas"] == {"RUNNING": 2}

    # A bad config changes nothing and names the field.
    bad = dict(config, applications=[dict(config["applications"][0], deployments=[{"name": "nope", "num_replicas": 1}])])
    path.write_text(yaml.safe_dump(bad))
    p = serve_core("deploy", str(path), "--address", ray_head)
    assert p.returncode == 2 and "applications[0].deployments.name" in p.stderr and "'nope'" in p.stderr
    bad["applications"][0]["deployments"] = [{"name": "hello", "max_ongoing_requests": 0}]
    path.write_text(yaml.safe_dump(bad))
    p = serve_core("deploy", str(path), "--address", ray_head)
    assert p.returncode == 2 and "applications.0.deployments.0.max_ongoing_requests" in p.stderr
    assert requests.get(url("/hello"), timeout=10).status_code == 200

    p = serve_core("shutdown", "--address", ray_head, check=True)
    assert "shut down" in p.stdout
    assert serve_core("status", "--address", ray_head, check=True).stdout.strip().endswith("applications: {}")

    def refused():
        try:
            requests.get(url("/hello"), timeout=3)
            return False
        except requests.ConnectionError:
            return True

    wait_for(refused, 10, "the proxy to stop answering after shutdown")


def test_port_in_use_fails_clearly(ray_head):
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        p = serve_core("run", "examples.function_app.app:app", "--address", ray_head, "--port", str(port), "--non-blocking", timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr
    serve_core("shutdown", "--address", ray_head, check=True)


def test_bad_import_path(ray_head):
    p = serve_core("run", "examples.function_app.app:nothing", "--address", ray_head, "--non-blocking")
    assert p.returncode == 2 and "has no attribute 'nothing'" in p.stderr


def test_unreachable_cluster_is_named(tmp_path):
    port = free_port()
    p = serve_core("status", "--address", f"127.0.0.1:{port}", timeout=180)
    assert p.returncode == 2 and f"127.0.0.1:{port}" in p.stderr and "cannot reach the cluster" in p.stderr
