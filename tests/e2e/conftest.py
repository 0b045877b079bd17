"""A real Ray head started with `ray start --block` in a subprocess, driven by the
`serve-core` command line as a user would."""

import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.e2e)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env():
    env = dict(os.environ)
    env["RAY_AUTH_MODE"] = "token"  # Ray 2.60 heads use token auth; the token file is local
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def serve_core(*args, timeout=180, check=False):
    """Run the serve-core console script; return the CompletedProcess."""
    exe = os.path.join(os.path.dirname(sys.executable), "serve-core")
    cmd = [exe] if os.path.exists(exe) else ["serve-core"]
    p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=REPO)
    if check and p.returncode != 0:
        raise AssertionError(f"serve-core {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


CLUSTER_ROOT = "/tmp/serve_core_cluster"  # serve-core cluster's state directories
ROOT_MODE = os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0
needs_netns = pytest.mark.skipif(not ROOT_MODE, reason="needs root and network namespaces (one node per address)")


@contextlib.contextmanager
def embedded_cluster(name: str):
    """`serve-core cluster up --name NAME --workers 2` (after taking down one an interrupted
    run left), and down again afterwards."""
    state_path = os.path.join(CLUSTER_ROOT, name, "state.json")
    if os.path.exists(state_path):
        serve_core("cluster", "down", "--name", name, timeout=180)
    p = serve_core("cluster", "up", "--name", name, "--workers", "2", timeout=240)
    try:
        assert p.returncode == 0, f"cluster up failed:\n{p.stdout}\n{p.stderr}"
        yield name
    finally:
        if os.path.exists(state_path):
            serve_core("cluster", "down", "--name", name, timeout=180)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    port, dash = free_port(), free_port()
    log = open(tmp_path_factory.mktemp("ray") / "head.log", "w")
    proc = subprocess.Popen(
        ["ray", "start", "--head", "--block", f"--port={port}", f"--dashboard-port={dash}",
         "--num-cpus=8", "--disable-usage-stats", "--include-dashboard=false"],
        stdout=log, stderr=subprocess.STDOUT, env=cli_env(), cwd=REPO, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    time.sleep(3)  # the raylet registers shortly after the GCS listens
    yield address
    serve_core("shutdown", "--address", address, timeout=60)
    os.killpg(proc.pid, 15)  # --block stops the node's processes when it ends
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    # `ray start` leaves this pointer behind; a later plain ray.init() would chase it.
    pointer = "/tmp/ray/ray_current_cluster"
    if os.path.exists(pointer) and open(pointer).read().strip().endswith(f":{port}"):
        os.remove(pointer)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's browser is Debian's chromium (scripts/install_deps.sh installs it;
    Playwright's own download is not reachable here); as root it runs without its sandbox."""
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is missing: run scripts/install_deps.sh (apt-get install chromium)"
    return {**browser_type_launch_args, "executable_path": exe, "args": ["--no-sandbox", "--disable-dev-shm-usage"]}


@contextlib.contextmanager
def live_view(*args):
    """`serve-core ui ARGS` on a free loopback port, until the block ends; yields its URL."""
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "serve-core")
    p = subprocess.Popen([exe, "ui", "--port", str(port), *args], env=cli_env(), cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert p.poll() is None, f"serve-core ui exited: {p.stdout.read() if p.stdout else ''}"
                assert time.monotonic() < deadline, "serve-core ui did not listen within 60 s"
                time.sleep(0.2)
        yield url
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
