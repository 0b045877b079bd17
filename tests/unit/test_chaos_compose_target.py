"""The compose target: containers read from `docker inspect`, node names, addresses inside and
outside the compose network, the status document the runner reads, replica choice, and every
fault through a fake Docker (no engine, no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaos.compose_containers import (
    HEAL_SCRIPT,
    Container,
    container_from_attrs,
    endpoint,
    iptables_loss_script,
    netem_command,
    node_containers,
    node_names,
    replica_candidates,
    replica_order,
    running_inside,
    status_doc,
)
from chaos.compose_target import ComposeCluster, ExecResult
from chaos.schedule import PlannedFault
from chaos.targets import TargetError, snapshot_from_status

pytestmark = pytest.mark.unit


def attrs(cid: str, service: str, number: int, ip: str, status: str = "running",
          ports: dict[str, Any] | None = None, oneoff: bool = False) -> dict[str, Any]:
    return {
        "Id": cid, "Name": f"/p-{service}-{number}",
        "Config": {"Labels": {"com.docker.compose.project": "p", "com.docker.compose.service": service,
                              "com.docker.compose.container-number": str(number),
                              "com.docker.compose.oneoff": "True" if oneoff else "False"}},
        "State": {"Status": status},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.9"}, "p_serve": {"IPAddress": ip}},
                            "Ports": ports or {}},
    }


HEAD = attrs("aaaa1111", "head", 1, "10.78.0.10", ports={"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18600"}]})
W1 = attrs("bbbb2222", "worker", 1, "10.78.0.3", ports={"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18601"}]})
W2 = attrs("cccc3333", "worker", 2, "10.78.0.4", ports={"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18602"}]})
PROM = attrs("dddd4444", "prometheus", 1, "10.78.0.5", ports={"9090/tcp": [{"HostIp": "127.0.0.1", "HostPort": "19090"}]})
RUNNER = attrs("eeee5555", "chaos", 1, "10.78.0.6", oneoff=True)

PROBE = {
    "nodes": [
        {"node_id": "H", "alive": True, "address": "10.78.0.10"},
        {"node_id": "OLD1", "alive": False, "address": "10.78.0.3"},  # w1 before a restart
        {"node_id": "N1", "alive": True, "address": "10.78.0.3"},
        {"node_id": "N2", "alive": True, "address": "10.78.0.4"},
    ],
    "serve": {
        "proxies": {"H": {"state": "HEALTHY", "host": "10.78.0.10", "port": 8000, "pid": 50},
                    "N1": {"state": "HEALTHY", "host": "10.78.0.3", "port": 8000, "pid": 51},
                    "N2": {"state": "HEALTHY", "host": "10.78.0.4", "port": 8000, "pid": 52}},
        "applications": {"default": {"status": "RUNNING", "route_prefix": "/", "deployments": {"Work": {
            "status": "HEALTHY", "replica_states": {"RUNNING": 2}, "target_replicas": 2,
            "replicas": [{"replica_id": "r1", "state": "RUNNING", "pid": 101, "node_id": "N1"},
                         {"replica_id": "r2", "state": "RUNNING", "pid": 102, "node_id": "N2"},
                         {"replica_id": "r3", "state": "STARTING", "pid": 0, "node_id": "N2"}]}}}},
    },
    "serve_error": "", "controller_pid": 77,
}


def containers(*docs: dict[str, Any]) -> list[Container]:
    return [container_from_attrs(d, "p") for d in docs]


def test_containers_from_inspect_documents():
    head, w1, w2, prom, runner = containers(HEAD, W1, W2, PROM, RUNNER)
    assert (head.node, head.address, head.published) == ("head", "10.78.0.10", {8000: ("127.0.0.1", 18600)})
    assert (w1.node, w2.node, prom.node, runner.node) == ("w1", "w2", None, None)
    assert runner.oneoff and not w1.oneoff
    assert list(node_containers([w2, prom, w1, head])) == ["head", "w1", "w2"]
    stopped = container_from_attrs({**W1, "State": {"Status": "exited"},
                                    "NetworkSettings": {"Networks": {"p_serve": {"IPAddress": ""}}}}, "p")
    assert (stopped.running, stopped.address) == (False, "")


def test_addresses_inside_the_network_and_from_the_host():
    head, w1, w2, prom, runner = containers(HEAD, W1, W2, PROM, RUNNER)
    all_ = [head, w1, w2, prom, runner]
    assert running_inside(all_, "eeee5555")  # docker sets the hostname to the short container id
    assert not running_inside(all_, "my-laptop") and not running_inside(all_, "")
    assert endpoint(w1, 8000, inside=True) == "10.78.0.3:8000"
    assert endpoint(w1, 8000, inside=False) == "127.0.0.1:18601"
    assert endpoint(w2, 8000, inside=False) == "127.0.0.1:18602"  # 0.0.0.0 is reached on loopback
    assert endpoint(prom, 8000, inside=False) is None


def test_status_document_places_replicas_and_proxies_on_nodes():
    nodes = node_containers(containers(HEAD, W1, W2))
    doc = status_doc(nodes, PROBE)
    assert [(n["name"], n["role"], n["alive"]) for n in doc["nodes"]] == [
        ("head", "head", True), ("w1", "worker", True), ("w2", "worker", True)]
    assert doc["applications"]["default"]["deployments"]["Work"]["replicas_per_node"] == {"w1": 1, "w2": 2}
    assert {p["node"] for p in doc["proxies"]} == {"head", "w1", "w2"}
    snap = snapshot_from_status(doc)
    assert list(snap.names) == ["head", "w1", "w2"]
    assert tuple(snap.deployments[0].nodes) == ("w1", "w2", "w2")
    assert "ray_error" not in doc


def test_status_when_ray_does_not_answer_judges_nodes_by_their_containers():
    nodes = node_containers(containers(attrs("aaaa1111", "head", 1, "", status="exited"), W1, W2))
    doc = status_doc(nodes, None, "the head container is exited")
    assert doc["ray_error"] == "the head container is exited"
    snap = snapshot_from_status(doc)
    assert [(n.name, n.alive) for n in snap.nodes] == [("head", False), ("w1", True), ("w2", True)]


def test_replica_candidates_and_the_seeded_choice():
    nodes = node_containers(containers(HEAD, W1, W2))
    names = node_names(PROBE, nodes)
    assert names == {"H": "head", "OLD1": "w1", "N1": "w1", "N2": "w2"}
    every = replica_candidates(PROBE, names)
    assert [c["replica_id"] for c in every] == ["r1", "r2"]  # STARTING without pid is not a target
    assert [c["pid"] for c in replica_candidates(PROBE, names, node="w2")] == [102]
    assert replica_candidates(PROBE, names, deployment="Other") == []
    assert replica_order(every, 3) == replica_order(every, 3) and len(replica_order(every, 3)) == 2
    assert {replica_order(every, s)[0]["replica_id"] for s in range(20)} == {"r1", "r2"}


def test_network_fault_commands():
    assert netem_command(delay_ms=50, jitter_ms=5) == ["tc", "qdisc", "add", "dev", "eth0", "root", "netem",
                                                      "delay", "50ms", "5ms"]
    assert netem_command(loss_pct=5) == ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "5%"]
    script = iptables_loss_script(5)
    assert "--probability 0.0500 -j DROP" in script and "-I INPUT -i eth0 -j SC-FAULT" in script
    assert "tc qdisc del dev eth0 root" in HEAL_SCRIPT and "-X SC-FAULT" in HEAL_SCRIPT


# -- faults through a fake Docker ---------------------------------------------------------------


class FakeDocker:
    def __init__(self, docs: list[dict[str, Any]], probe: dict[str, Any] | None = None, tc_ok: bool = True) -> None:
        self.docs = {d["Id"]: json.loads(json.dumps(d)) for d in docs}
        self.probe = probe if probe is not None else PROBE
        self.tc_ok = tc_ok
        self.calls: list[tuple[str, str, Any]] = []
        self.dead_pids: set[int] = set()
        self.gone_pids: set[int] = set()  # exited before the kill (a stale view)

    def containers(self, project: str) -> list[Container]:
        return [container_from_attrs(d, project) for d in self.docs.values()]

    def _status(self, c: Container, status: str) -> None:
        self.docs[c.id]["State"]["Status"] = status

    def exec(self, container: Container, argv: list[str], timeout_s: float) -> ExecResult:
        self.calls.append(("exec", container.node or container.service, argv))
        if argv[:3] == ["python", "-m", "serve_core.local_cluster.probe"]:
            return ExecResult(0, "ray says hello\n" + json.dumps(self.probe) + "\n", "")
        if argv[:2] == ["kill", "-9"]:
            if int(argv[2]) in self.gone_pids:
                return ExecResult(1, "", f"kill: ({argv[2]}) - No such process")
            self.dead_pids.add(int(argv[2]))
            return ExecResult(0, "", "")
        if argv[:2] == ["kill", "-0"]:
            return ExecResult(1 if int(argv[2]) in self.dead_pids else 0, "", "")
        if argv[:2] == ["tc", "qdisc"]:
            return ExecResult(0, "", "") if self.tc_ok else ExecResult(2, "", "Error: Specified qdisc not found.")
        return ExecResult(0, "deployed\n", "")

    def kill(self, c: Container) -> None:
        self.calls.append(("kill", c.node or "", None))
        self._status(c, "exited")

    def start(self, c: Container) -> None:
        self.calls.append(("start", c.node or "", None))
        self._status(c, "running")

    def pause(self, c: Container) -> None:
        self.calls.append(("pause", c.node or "", None))
        self._status(c, "paused")

    def unpause(self, c: Container) -> None:
        self.calls.append(("unpause", c.node or "", None))
        self._status(c, "running")

    def logs_since(self, c: Container, since: float) -> str:
        return "Ray runtime started.\n" if self.docs[c.id]["State"]["Status"] == "running" else ""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def cluster(docker: FakeDocker, hostname: str = "eeee5555") -> ComposeCluster:
    clock = Clock()
    return ComposeCluster("p", docker=docker, get=lambda url: 200, sleep=clock.sleep, monotonic=clock.monotonic,
                          wall=clock.monotonic, hostname=hostname, wait=clock.sleep)


def fault(action: str, **kw: Any) -> PlannedFault:
    return PlannedFault(at_s=1.0, action=action, label=action, **kw)


DOCS = [HEAD, W1, W2, PROM, RUNNER]


def test_check_snapshot_proxies_and_prometheus_inside_and_outside():
    d = FakeDocker(DOCS)
    inside = cluster(d)
    assert list(inside.check().names) == ["head", "w1", "w2"]
    assert inside.proxy_urls("serve_core", ["workers"]) == ["http://10.78.0.3:8000", "http://10.78.0.4:8000"]
    assert inside.prometheus_url() == "http://10.78.0.5:9090"
    outside = cluster(d, hostname="laptop")
    assert outside.proxy_urls("serve_core", ["all"]) == ["http://127.0.0.1:18600", "http://127.0.0.1:18601",
                                                         "http://127.0.0.1:18602"]
    assert outside.prometheus_url() == "http://127.0.0.1:19090"
    probe = d.calls[0]
    assert probe[1] == "head" and probe[2][-2:] == ["--address", "10.78.0.10:6379"]


def test_a_missing_project_or_a_dead_node_is_named_with_the_fix():
    with pytest.raises(TargetError, match="cannot find compose project 'p'") as info:
        cluster(FakeDocker([W1])).check()
    assert "up -d" in info.value.fix
    stopped_w2 = attrs("cccc3333", "worker", 2, "", status="exited")
    with pytest.raises(TargetError, match="not whole"):
        cluster(FakeDocker([HEAD, W1, stopped_w2])).check()


def test_deploy_runs_the_driver_in_the_head_container():
    d = FakeDocker(DOCS)
    from chaos.experiment import Application

    out = cluster(d).deploy(Application(import_path="tests.e2e.fault_app:app"), "serve_core")
    (_, where, argv), = [c for c in d.calls if c[0] == "exec"]
    assert where == "head" and argv[:4] == ["python", "-m", "chaos.targets", "deploy"]
    assert out["argv"][:3] == ["docker", "exec", "p-head-1"]


def test_kill_replica_kills_the_chosen_pid_in_its_nodes_container():
    d = FakeDocker(DOCS)
    out = cluster(d).inject(fault("kill-replica", deployment="Work", node="w2", seed=1))
    assert out.ok, out.error
    assert out.output is not None and out.output["target"]["pid"] == 102 and out.output["target"]["node"] == "w2"
    assert ("exec", "w2", ["kill", "-9", "102"]) in d.calls
    assert out.started is not None and out.ended is not None


def test_kill_replica_passes_over_one_that_is_already_gone():
    d = FakeDocker(DOCS)
    first = cluster(d).inject(fault("kill-replica", deployment="Work", seed=1)).output["target"]["pid"]
    d = FakeDocker(DOCS)
    d.gone_pids.add(first)  # a rollout stopped it after the view was taken
    out = cluster(d).inject(fault("kill-replica", deployment="Work", seed=1))
    assert out.ok and out.output["target"]["pid"] != first, out.error


def test_kill_proxy_and_controller():
    d = FakeDocker(DOCS)
    assert cluster(d).inject(fault("kill-proxy", node="w1")).ok
    assert cluster(d).inject(fault("kill-controller")).ok
    assert ("exec", "w1", ["kill", "-9", "51"]) in d.calls and ("exec", "head", ["kill", "-9", "77"]) in d.calls
    missing = cluster(FakeDocker(DOCS, probe={**PROBE, "serve": {}, "controller_pid": 0})).inject(fault("kill-proxy", node="w1"))
    assert not missing.ok and "no proxy runs on node w1" in (missing.error or "")


def test_kill_gcs_kills_the_head_container_and_starts_it_after_the_downtime():
    d = FakeDocker(DOCS)
    out = cluster(d).inject(fault("kill-gcs", args={"down_for_s": 5.0}))
    assert out.ok, out.error
    assert [c[:2] for c in d.calls if c[0] in ("kill", "start")] == [("kill", "head"), ("start", "head")]
    assert out.output is not None and out.output["detail"]["down_s"] >= 5.0


def test_kill_and_restart_a_worker():
    d = FakeDocker(DOCS)
    c = cluster(d)
    assert c.inject(fault("kill-node", node="w1")).ok
    assert d.docs["bbbb2222"]["State"]["Status"] == "exited"
    assert c.inject(fault("restart-node", node="w1")).ok
    assert d.docs["bbbb2222"]["State"]["Status"] == "running"
    bad = c.inject(fault("kill-node", node="w9"))
    assert not bad.ok and "no node 'w9'" in (bad.error or "")


def _scripts(d: FakeDocker, node: str) -> list[str]:
    return [x[2][2] for x in d.calls if x[0] == "exec" and x[1] == node and x[2][:2] == ["sh", "-c"]]


def test_partition_drops_every_packet_for_the_duration_then_heals():
    d = FakeDocker(DOCS)
    out = cluster(d).inject(fault("partition", node="w2", duration_s=3.0))
    assert out.ok and out.output is not None and out.output["detail"]["how"] == "iptables drop"
    cut, heal = _scripts(d, "w2")
    assert "-j DROP" in cut and "statistic" not in cut  # all packets, in and out
    assert "-I INPUT -i eth0" in cut and "-I OUTPUT -o eth0" in cut
    assert heal == HEAL_SCRIPT
    assert not [x for x in d.calls if x[0] in ("pause", "unpause")]


def test_partition_without_iptables_names_the_fix():
    d = FakeDocker(DOCS)
    d.exec = lambda c, argv, timeout_s: ExecResult(3, "", "iptables: not found")  # type: ignore[method-assign]
    out = cluster(d).inject(fault("partition", node="w2", duration_s=3.0))
    assert not out.ok and "NET_ADMIN" in (out.error or "") and "iptables: not found" in (out.error or "")


def test_partition_freeze_pauses_for_the_duration_and_heal_unpauses():
    d = FakeDocker(DOCS)
    c = cluster(d)
    assert c.inject(fault("partition", node="w2", args={"mode": "freeze"}, duration_s=3.0)).ok
    assert [x[:2] for x in d.calls if x[0] in ("pause", "unpause")] == [("pause", "w2"), ("unpause", "w2")]
    assert c.inject(fault("partition", node="w1", args={"mode": "freeze"})).ok  # no duration: left until heal
    assert d.docs["bbbb2222"]["State"]["Status"] == "paused"
    assert c.inject(fault("heal", node="w1")).ok
    assert d.docs["bbbb2222"]["State"]["Status"] == "running"


def test_netem_uses_tc_and_falls_back_to_iptables_for_loss_only():
    d = FakeDocker(DOCS)
    out = cluster(d).inject(fault("netem", node="w1", args={"loss_pct": 5.0}, duration_s=2.0))
    assert out.ok and out.output is not None and out.output["detail"]["how"] == "tc netem"
    d = FakeDocker(DOCS, tc_ok=False)
    out = cluster(d).inject(fault("netem", node="w1", args={"loss_pct": 5.0}, duration_s=2.0))
    assert out.ok and out.output is not None and out.output["detail"]["how"] == "iptables statistic"
    assert any(x[2][:2] == ["sh", "-c"] and "statistic" in x[2][2] for x in d.calls if x[0] == "exec")
    delay = cluster(FakeDocker(DOCS, tc_ok=False)).inject(fault("netem", node="w1", args={"delay_ms": 50.0}))
    assert not delay.ok and "no netem qdisc" in (delay.error or "")


def test_interrupt_ends_a_held_fault_at_once():
    d = FakeDocker(DOCS)
    c = cluster(d)
    c.interrupt()
    assert c.inject(fault("partition", node="w1", args={"mode": "freeze"}, duration_s=3600.0)).ok
    assert d.docs["bbbb2222"]["State"]["Status"] == "running"
    assert c.inject(fault("partition", node="w2", duration_s=3600.0)).ok
    assert _scripts(d, "w2")[-1] == HEAL_SCRIPT
