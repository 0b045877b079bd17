"""Faults on the embedded multi-node cluster under open-loop load (issue 3), each injected
with `serve-core cluster fault`: a replica and then the controller killed, a proxy killed,
the GCS killed and relaunched, the head node killed and restarted, a worker node killed,
and a worker node cut off the network.

Load: 100 GET requests/s at a constant arrival rate from this process, spread over the
workers' proxies (netns mode: <node address>:8000), each doing ~5 ms of work
(tests/e2e/fault_app.py). A request failed when it got a non-2xx status or no answer within
5 s of its intended start; a refused connection is retried once on another proxy and
counted. Asserts on counts only; the times are printed for the team's notes."""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.e2e import raw_http
from tests.e2e.conftest import serve_core

NAME = "faults"
ROOT = "/tmp/serve_core_cluster"
RATE = 100.0
TIMEOUT_S = 5.0
APP = "tests.e2e.fault_app:app"
STATE: dict = {}  # the running cluster's state file
ROOT_MODE = (os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0)
pytestmark = pytest.mark.skipif(not ROOT_MODE, reason="needs root and network namespaces (one node per address)")


def cluster(command, *args, timeout=240, check=True):
    return serve_core("cluster", command, "--name", NAME, *args, timeout=timeout, check=check)


def fault(kind, *args, timeout=150):
    return serve_core("cluster", "fault", kind, "--name", NAME, *args, timeout=timeout, check=False)


def status():
    p = cluster("status", "--json", check=False)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def deploy(import_path, timeout=180):
    return cluster("exec", "--", sys.executable, "-m", "serve_core.cli", "run", import_path, "--non-blocking",
                   timeout=timeout, check=False)


def replica_pids():
    """pid -> node of every RUNNING replica of Work, from the controller."""
    p = cluster("exec", "--", sys.executable, "-m", "embedded_cluster.probe", "--address", STATE["head_address"],
                check=False, timeout=60)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    doc = json.loads(lines[-1]) if lines else {}  # no answer (e.g. Ray busy declaring a node dead): ask again
    if not doc.get("serve"):  # the controller is restarting: ask again later
        return {}
    dep = doc["serve"]["applications"]["default"]["deployments"]["Work"]
    names = {n["node_id"]: n["address"] for n in doc["nodes"]}
    return {r["pid"]: names.get(r["node_id"], "") for r in dep["replicas"] if r["state"] == "RUNNING"}


def prom_value(state, query):
    """One number from the cluster's Prometheus (0 when the query has no series)."""
    r = httpx.get(f"{state['prometheus_url']}/api/v1/query", params={"query": query}, timeout=10).json()
    return sum(float(s["value"][1]) for s in r["data"]["result"])


def replicas_per_node(st):
    app = st.get("applications", {}).get("default") or {}
    dep = app.get("deployments", {}).get("Work") or {}
    return dep.get("replicas_per_node", {}), dep.get("replicas", {})


def pid_start(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


@dataclass
class Load:
    sent: int = 0
    ok: int = 0
    retried: int = 0  # refused connections retried on another proxy
    failed: list = field(default_factory=list)  # (intended, proxy, what)
    lost_in_flight: list = field(default_factory=list)  # broken after connecting to a proxy being killed
    pids: dict = field(default_factory=dict)  # pid -> (first, last) intended time it answered


class OpenLoop:
    """Open-loop GETs over ``proxies``; ``killed`` names a proxy whose node is being killed,
    so that requests it had accepted and then lost with the connection are told apart."""

    def __init__(self, proxies, rate=RATE):
        self.proxies, self.rate = proxies, rate
        self.result = Load()
        self.killed = None
        self.t0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def now(self):
        return time.monotonic() - self.t0

    def __enter__(self):
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(TIMEOUT_S + 30)

    def answering(self, window_s=1.5):
        """The replica pids that answered requests sent in the last ``window_s``."""
        since = self.now() - window_s - 0.5
        return {pid for pid, (_, last) in list(self.result.pids.items()) if last > since}

    def wait_answering(self, predicate, timeout_s):
        """Seconds until ``predicate(answering pids)`` held (checked twice a second), or None."""
        return wait_for(lambda: predicate(self.answering()), timeout_s, 0.5)

    async def _one(self, n, intended):
        r = self.result
        deadline = self.t0 + intended + TIMEOUT_S
        url = self.proxies[n % len(self.proxies)]
        try:
            try:
                status, body = await asyncio.wait_for(raw_http.get(url), deadline - time.monotonic())
            except raw_http.Refused:
                r.retried += 1
                url = self.proxies[(n + 1) % len(self.proxies)]
                status, body = await asyncio.wait_for(raw_http.get(url), max(0.1, deadline - time.monotonic()))
            if 200 <= status < 300:
                r.ok += 1
                pid = json.loads(body)
                lo, _ = r.pids.get(pid, (intended, intended))
                r.pids[pid] = (lo, intended)
            else:
                r.failed.append((round(intended, 2), url, status, body[:200]))
        except raw_http.Broken as e:
            entry = (round(intended, 2), url, "broken", str(e)[:200])
            (r.lost_in_flight if url == self.killed else r.failed).append(entry)
        except Exception as e:  # timeouts included
            r.failed.append((round(intended, 2), url, type(e).__name__, str(e)[:200]))

    async def _main(self):
        # No keep-alive: every request opens its own connection, so a dead proxy shows up
        # as a refused connection (retried), not as a pooled connection that breaks.
        tasks = set()
        n = 0
        while not self._stop.is_set():
            intended = n / self.rate
            delay = self.t0 + intended - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t = asyncio.ensure_future(self._one(n, intended))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            n += 1
            self.result.sent = n
        if tasks:
            await asyncio.wait(tasks, timeout=TIMEOUT_S + 10)
        for _ in list(tasks):  # still unanswered: failed (should not happen, wait_for bounds them)
            self.result.failed.append(("end", "", "unfinished", ""))


def wait_for(predicate, timeout_s, interval_s=1.0):
    """Seconds until ``predicate()`` held, or None if it did not within ``timeout_s``."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout_s:
        last = predicate()
        if last:
            return time.monotonic() - start
        time.sleep(interval_s)
    return None


@pytest.fixture
def fault_cluster():
    state_path = os.path.join(ROOT, NAME, "state.json")
    if os.path.exists(state_path):  # left over from an interrupted run
        cluster("down", check=False)
    p = cluster("up", "--workers", "2", check=False)
    try:
        assert p.returncode == 0, f"cluster up failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        with open(state_path) as f:
            state = json.load(f)
        STATE.update(state)
        p = deploy(APP)
        assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
        workers = [n for n in state["plan"]["nodes"] if n["role"] == "worker"]
        proxies = [f"http://{n['address']}:8000/" for n in workers]
        for url in proxies:
            assert wait_for(lambda url=url: httpx.get(url, timeout=5).status_code == 200, 30, 0.5) is not None, url
        # SPREAD placement: one replica per worker, none on the head.
        spread = sorted(n["address"] for n in workers)
        assert wait_for(lambda: sorted(replica_pids().values()) == spread, 30) is not None, replica_pids()
        yield state, workers, proxies
    finally:
        if os.path.exists(state_path):
            cluster("down", check=False)


def report(name, load, recover_s, extra=""):
    r = load.result
    print(f"\n[{name}] sent={r.sent} ok={r.ok} failed={len(r.failed)} lost_in_flight_at_killed_proxy="
          f"{len(r.lost_in_flight)} retried_connections={r.retried} time_to_recover_s="
          f"{'n/a' if recover_s is None else f'{recover_s:.1f}'} {extra}".rstrip())
    for f in r.failed[:10]:
        print("  failed:", f)
    for f in r.lost_in_flight[:10]:
        print("  lost in flight:", f)


def test_gcs_killed_and_relaunched(fault_cluster):
    _, _, proxies = fault_cluster
    with OpenLoop(proxies) as load:
        time.sleep(5)
        pids_before = set(load.result.pids)
        starts = {pid: pid_start(pid) for pid in pids_before}
        p = fault("kill-gcs", "--down-for", "5")
        assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
        back_at = load.now()
        print("\n" + p.stdout.strip())
        # The controller is back (from its checkpoint) with the same two replicas.
        time.sleep(5)
        after_recovery = load.answering()
        alive_after_recovery = {pid: pid_start(pid) for pid in pids_before}
        # The control plane accepts a scale change.
        t = time.monotonic()
        p = deploy("tests.e2e.fault_app:app3", timeout=150)
        assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
        deploy_s = time.monotonic() - t
        scale_s = load.wait_answering(lambda pids: len(pids) == 3, 90)
        scale_total_s = time.monotonic() - t
        time.sleep(3)
        after_scale = load.answering(3)
    r = load.result
    report("kill-gcs", load, scale_total_s,
           f"gcs_back_at_s={back_at:.1f} deploy_returned_s={deploy_s:.1f} originals_kept_by_scale_change="
           f"{sorted(pids_before & after_scale)} of {sorted(pids_before)}")
    assert r.sent > 0 and r.failed == [] and r.lost_in_flight == []
    assert r.ok == r.sent
    # No replica restarted: the two that answered before the kill are the same processes,
    # still alive and the only ones answering once the control plane is back.
    assert len(pids_before) == 2
    assert alive_after_recovery == starts, (starts, alive_after_recovery, r.pids)
    assert after_recovery == pids_before, (after_recovery, r.pids)
    assert scale_s is not None and len(after_scale) == 3, (after_scale, r.pids)
    assert pids_before < after_scale, "the scale change restarted replicas it should have kept"
    st = status()
    assert st["healthy"] is True, st
    assert replicas_per_node(st)[1].get("RUNNING") == 3, st


def test_gcs_scale_change_keeps_the_replicas_it_had(fault_cluster):
    """Redeploying with another replica count from a new driver process adds a replica and
    restarts none (the code version does not depend on the driver)."""
    before = replica_pids()
    p = deploy("tests.e2e.fault_app:app3", timeout=150)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    after = wait_for(lambda: len(replica_pids()) == 3, 60, 1.0)
    assert after is not None
    assert set(before) < set(replica_pids()), (before, replica_pids())


def test_replica_then_controller_killed(fault_cluster):
    state, workers, proxies = fault_cluster
    retried_before = prom_value(state, 'sum(serve_core_router_retries_total{reason="replica_died"})')
    with OpenLoop(proxies) as load:
        time.sleep(4)
        victim = json.loads(fault("kill-replica", "--seed", "7", "--json").stdout)["target"]
        killed_at = load.now()
        replaced_s = load.wait_answering(lambda pids: len(pids) == 2 and victim["pid"] not in pids, 60)
        time.sleep(2)
        pids = replica_pids()
        p = fault("kill-controller", "--json")
        assert p.returncode == 0, p.stderr
        time.sleep(6)  # restarted, restored from its checkpoint, re-adopted both replicas
        after_controller = replica_pids()
        answering = load.answering(3)
    r = load.result
    time.sleep(2)  # a last scrape
    retried = prom_value(state, 'sum(serve_core_router_retries_total{reason="replica_died"})') - retried_before
    report("kill-replica+kill-controller", load, replaced_s,
           f"replica_killed_at_s={killed_at:.1f} retried_after_acceptance={retried:.0f}")
    assert r.sent > 0 and r.failed == [] and r.lost_in_flight == [] and r.ok == r.sent
    assert replaced_s is not None and victim["pid"] not in pids and len(pids) == 2
    # The replacement went where its sibling is not (control/placement.py), not wherever
    # Ray's round-robin SPREAD happened to be.
    assert sorted(pids.values()) == sorted(n["address"] for n in workers), pids
    # The controller's restart replaced nothing: the same two processes serve.
    assert after_controller == pids and answering == set(pids), (pids, after_controller, answering)
    # GETs the dead replica had accepted are retried elsewhere (the proxies count them; printed
    # above). With 5 ms of work the victim often holds none at the kill, so the count being
    # above zero is asserted where requests last longer: test_faults.py in the integration tier.


def test_proxy_killed(fault_cluster):
    _, workers, proxies = fault_cluster
    with OpenLoop(proxies) as load:
        time.sleep(4)
        load.killed = proxies[0]
        p = fault("kill-proxy", "--node", workers[0]["name"], "--json")
        assert p.returncode == 0, p.stderr
        back_s = wait_for(lambda: _answers(proxies[0]), 30, 0.1)
        time.sleep(3)
    r = load.result
    report("kill-proxy", load, back_s)
    # Clients of the other proxy lost nothing; refused connections went there.
    assert r.failed == [], r.failed
    assert r.ok + len(r.lost_in_flight) == r.sent
    assert back_s is not None


def _answers(url):
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_head_killed_and_restarted(fault_cluster):
    """GCS, raylet, controller and head proxy die together; the workers keep serving."""
    _, _, proxies = fault_cluster
    with OpenLoop(proxies) as load:
        time.sleep(4)
        pids_before = set(load.result.pids)
        p = fault("kill-node", "--node", "head")
        assert p.returncode == 0, p.stderr
        time.sleep(8)  # the head stays down: nothing on the workers may notice
        during = load.answering(4)
        p = fault("restart-node", "--node", "head", timeout=150)
        assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
        back_at = load.now()
        recovered_s = wait_for(lambda: status().get("healthy") is True and set(replica_pids()) == pids_before, 90, 1.0)
        t = time.monotonic()
        p = deploy("tests.e2e.fault_app:app3", timeout=150)
        assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
        scaled_s = load.wait_answering(lambda pids: len(pids) == 3, 90)
        scale_s = time.monotonic() - t
        after_scale = load.answering(2)
    r = load.result
    report("kill-head+restart", load, recovered_s, f"head_back_at_s={back_at:.1f} scale_accepted_and_done_s={scale_s:.1f}")
    assert r.sent > 0 and r.failed == [] and r.lost_in_flight == [] and r.ok == r.sent
    assert len(pids_before) == 2 and during == pids_before
    assert recovered_s is not None, "the controller did not re-adopt the workers' replicas"
    assert scaled_s is not None and pids_before < after_scale, (pids_before, after_scale)


def test_worker_node_killed(fault_cluster):
    _, workers, proxies = fault_cluster
    victim = workers[0]
    with OpenLoop(proxies) as load:
        time.sleep(4)
        load.killed = proxies[0]
        p = fault("kill-node", "--node", victim["name"])
        assert p.returncode == 0, p.stderr
        killed_at = load.now()
        # Ray declares the node dead (1 s health checks, 3 misses); a replacement starts on w2.
        replaced_s = wait_for(lambda: sorted(replica_pids().values()) == [workers[1]["address"]] * 2, 60, 1.0)
        time.sleep(3)
    r = load.result
    report("kill-node-worker", load, replaced_s, f"killed_at_s={killed_at:.1f}")
    assert r.failed == [], r.failed  # requests via w2's proxy, and those refused by w1 and retried
    assert r.ok + len(r.lost_in_flight) == r.sent
    assert replaced_s is not None
    p = fault("restart-node", "--node", victim["name"], timeout=150)
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: _answers(proxies[0]), 60, 0.5) is not None  # its proxy is back
    # The node came back under a new Ray node id; the proxy that died with the old one must
    # not be reported as FAILED for ever, failing every later deploy (issue 16).
    p = deploy(APP)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"


def test_worker_node_cut_off(fault_cluster):
    """A partition closes no connection: the controller's word that Ray declared the node
    dead is what ends the requests its replica held (GETs, retried elsewhere)."""
    state, workers, _ = fault_cluster
    victim, survivor = workers
    head = next(n for n in state["plan"]["nodes"] if n["role"] == "head")
    survivors = [f"http://{survivor['address']}:8000/", f"http://{head['address']}:8000/"]
    with OpenLoop(survivors) as load:
        time.sleep(4)
        p = fault("partition", "--node", victim["name"], "--json")
        assert p.returncode == 0, p.stderr
        cut_at = load.now()
        replaced_s = wait_for(lambda: sorted(replica_pids().values()) == [survivor["address"]] * 2, 60, 1.0)
        time.sleep(3)
    r = load.result
    report("partition-worker", load, replaced_s, f"cut_at_s={cut_at:.1f}")
    healed = fault("heal", "--node", victim["name"], "--json", timeout=150)
    assert r.sent > 0 and r.failed == [] and r.ok == r.sent, r.failed[:5]
    assert replaced_s is not None
    # Ray declared the node dead while it was cut off, and a node declared dead never rejoins by
    # itself: the heal started it again, as a node supervisor would, and its proxy answers.
    assert healed.returncode == 0 and json.loads(healed.stdout)["target"]["restarted"] is True, healed.stdout
    assert wait_for(lambda: _answers(f"http://{victim['address']}:8000/"), 60, 0.5) is not None
