"""`serve-core cluster up | status | exec | down` end to end: a head and two workers (each
in its own network namespace when run as root), Redis, Prometheus, a serve_core app
served through every node's proxy, and nothing left behind."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from serve_core.data.handshake import HELLO_BYTES
from tests.e2e.conftest import REPO, serve_core

NAME = "e2e"
ROOT = "/tmp/serve_core_cluster"
LOOPBACK_PROXY_PORT = 8411  # 8000, 8100 and 8350 are used by other tests
# netns mode when root (as `up` chooses); SERVE_CORE_E2E_NO_NETNS=1 tests loopback mode as root too.
ROOT_MODE = (os.geteuid() == 0 and not os.environ.get("SERVE_CORE_E2E_NO_NETNS")
             and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0)


def cluster(command, *args, timeout=240, check=True):
    return serve_core("cluster", command, "--name", NAME, *args, timeout=timeout, check=check)


def status():
    p = cluster("status", "--json", check=False)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (requests.RequestException, OSError, ValueError) as e:
            last = e
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout_s}s (last: {last!r})")


def redis_command(address, *parts):
    host, port = address.rsplit(":", 1)
    payload = f"*{len(parts)}\r\n".encode() + b"".join(f"${len(p)}\r\n{p}\r\n".encode() for p in parts)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(payload)
        return s.recv(1024).decode().strip()


def namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("sc-")]


def pid_alive(pid, start_time):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X") and int(fields[19]) == start_time


@pytest.fixture(scope="module")
def up():
    state_path = os.path.join(ROOT, NAME, "state.json")
    if os.path.exists(state_path):  # left over from an interrupted run
        cluster("down", check=False)
    args = ["up", "--workers", "2"]
    if not ROOT_MODE:
        args += ["--no-netns", "--proxy-port", str(LOOPBACK_PROXY_PORT)]
    started = time.monotonic()
    p = cluster(*args, check=False)
    if p.returncode != 0:
        cluster("down", check=False)
        raise AssertionError(f"cluster up failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    with open(state_path) as f:
        state = json.load(f)
    state["up_s"] = time.monotonic() - started
    try:
        yield state
    finally:
        if os.path.exists(state_path):
            cluster("down", check=False)


def test_cluster_up_serve_scrape_and_down(up):
    mode = "netns" if ROOT_MODE else "loopback"
    assert up["mode"] == mode
    token = up["ray_auth_token"]
    assert len(token) == 64 and all(p["pid"] > 0 and p["command"] and p["role"] for p in up["processes"])
    assert {p["role"] for p in up["processes"]} == {"redis", "head", "worker", "prometheus", "targets"}

    # Three alive Ray nodes, each with its own address (netns) or its own ports (loopback).
    st = status()
    assert st["healthy"] is True, st
    nodes = st["nodes"]
    assert [n["role"] for n in nodes] == ["head", "worker", "worker"]
    assert all(n["alive"] and n["ray_node_id"] for n in nodes)
    assert len({n["ray_node_id"] for n in nodes}) == 3
    if mode == "netns":
        assert len({n["address"] for n in nodes}) == 3
        assert [n["namespace"] for n in nodes] == ["sc-head", "sc-w1", "sc-w2"]
    assert len({n["metrics"] for n in nodes}) == 3
    assert nodes[0]["cpus"] == 0  # replicas are not placed on the head

    # Redis needs the password and answers PING with it.
    redis = up["redis_address"]
    assert redis_command(redis, "PING").startswith("-NOAUTH")
    assert redis_command(redis, "AUTH", up["redis_password"]) == "+OK"
    assert st["redis"]["ping"] == "PONG"

    # Prometheus is ready and scrapes every Ray node.
    prom = up["prometheus_url"]
    assert requests.get(f"{prom}/-/ready", timeout=5).status_code == 200

    def ray_targets_up():
        targets = requests.get(f"{prom}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        ray = [t for t in targets if t["labels"]["job"] == "ray"]
        return len(ray) == 3 and all(t["health"] == "up" for t in ray)

    wait_for(ray_targets_up, 30, "the three Ray node targets up in Prometheus")

    # Deploy through a driver on the head node, then reach the app through every proxy.
    p = cluster("exec", "--", sys.executable, "-m", "serve_core.cli", "run", "examples.function_app.app:app",
                "--non-blocking", timeout=180, check=False)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    if mode == "netns":
        proxies = [f"http://{n['address']}:8000" for n in nodes]
    else:
        proxies = [f"http://127.0.0.1:{LOOPBACK_PROXY_PORT + i}" for i in range(3)]
    for i, url in enumerate(proxies):
        body = wait_for(lambda url=url, i=i: requests.get(url, params={"name": f"n{i}"}, timeout=5).json(),
                        30, f"an answer from the proxy at {url}")
        assert body == {"message": f"Hello, n{i}!"}

    st = status()
    app = st["applications"]["default"]
    assert app["status"] == "RUNNING"
    per_node = app["deployments"]["hello"]["replicas_per_node"]
    assert sum(per_node.values()) == 1 and "head" not in per_node
    assert len(st["proxies"]) == 3 and all(p["state"] == "HEALTHY" for p in st["proxies"])

    # serve_core's own series reach Prometheus through the refreshed file_sd targets.
    def serve_core_series():
        r = requests.get(f"{prom}/api/v1/query", params={"query": 'count({job="serve_core",__name__=~"serve_core_.+"})'},
                         timeout=5).json()
        result = r["data"]["result"]
        return result and int(result[0]["value"][1]) > 0

    def serve_core_targets_up():
        targets = requests.get(f"{prom}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        up = {t["labels"].get("component") for t in targets if t["labels"]["job"] == "serve_core" and t["health"] == "up"}
        return up == {"controller", "proxy", "replica"}

    wait_for(serve_core_series, 30, "serve_core_ series in Prometheus")
    wait_for(serve_core_targets_up, 30, "the controller, proxy and replica targets up in Prometheus")

    attack_from_another_node(nodes, proxies[0])

    # Down stops every process it started and removes its network and state.
    down_started = time.monotonic()
    p = cluster("down", timeout=120)
    down_s = time.monotonic() - down_started
    assert "is down" in p.stdout
    survivors = [(pr["name"], pr["pid"]) for pr in up["processes"] if pid_alive(pr["pid"], pr["start_time"])]
    survivors += [(f"{pr['name']}/{c}", v["pid"]) for pr in up["processes"] for c, v in pr["children"].items()
                  if pid_alive(v["pid"], v["start_time"])]
    assert survivors == []
    assert not os.path.exists(os.path.join(ROOT, NAME))
    if mode == "netns":
        assert namespaces() == []
        assert subprocess.run(["ip", "link", "show", "dev", "scbr0"], capture_output=True).returncode != 0
        rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
        assert "scbr0" not in rules
    else:  # (in netns mode the bridge's route is gone: send nothing to those addresses now)
        with pytest.raises(requests.ConnectionError):
            requests.get(proxies[1], timeout=3)
    assert "no cluster named" in cluster("down").stdout  # idempotent: exit 0, nothing to do
    print(f"\n{mode} mode: up {up['up_s']:.0f}s, down {down_s:.0f}s")


RAW_STATUS = ("import json; from serve_core import ray_seam; ray_seam.connect(); "
              "print(json.dumps(ray_seam.get_controller().status()))")


def attack_from_another_node(nodes, proxy_url):
    """A process in another node's namespace (netns mode; the host in loopback mode), with
    no cluster secret, sends a pickle that would create a file, a 1 GiB frame and random
    bytes to the replica's data and metrics ports and to a proxy: nothing executes and
    the application keeps answering."""
    p = cluster("exec", "--", sys.executable, "-c", RAW_STATUS, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    raw = json.loads(p.stdout.strip().splitlines()[-1])
    replica = raw["applications"]["default"]["deployments"]["hello"]["replicas"][0]
    proxy = proxy_url.removeprefix("http://")
    targets = [f"{replica['host']}:{replica['port']}", f"{replica['host']}:{replica['metrics_port']}", proxy]
    marker = f"/tmp/serve_core_pwned_{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    argv = [sys.executable, "-m", "tests.attack", marker, *targets]
    outsider = next((n["namespace"] for n in nodes if n["ray_node_id"] != replica["node_id"] and n.get("namespace")), None)
    if outsider:
        argv = ["ip", "netns", "exec", outsider, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(replies) == 3 and not os.path.exists(marker)
    data_port = replies[0]["replies"]
    assert set(data_port.values()) == {HELLO_BYTES}, data_port  # the handshake's hello, then closed
    assert requests.get(proxy_url, params={"name": "after"}, timeout=5).json() == {"message": "Hello, after!"}


def test_missing_binary_is_named_with_its_install_command():
    """Without redis-server on PATH, up fails before starting anything and says what to install."""
    root = tempfile.mkdtemp(prefix="scnb", dir="/tmp")  # short: Ray socket paths live under it
    try:
        env = {**os.environ, "PATH": os.path.dirname(sys.executable), "PYTHONPATH": REPO}
        p = subprocess.run([sys.executable, "-m", "serve_core.cli", "cluster", "up", "--name", "nobin", "--state-root", root],
                           capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
        assert p.returncode == 2, p.stderr
        assert "apt-get install redis-server" in p.stderr
        assert os.listdir(root) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)
