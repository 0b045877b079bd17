"""The compose target: containers read from `docker inspect`, node names, addresses inside and
outside the compose network, the status document the runner reads, replica choice, the
network-fault helper's scripts and container, and every fault through a fake Docker (no engine,
no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaos.spec.schedule import PlannedFault
from chaos.targets.base import TargetError, snapshot_from_status
from chaos.targets.compose import ComposeCluster
from chaos.targets.compose_containers import (
    APPLIED,
    HEAL_SCRIPT,
    HEALED,
    HELPER_LABEL,
    Container,
    container_from_attrs,
    cut_apply,
    endpoint,
    heal_script,
    helper_how,
    helper_script,
    iptables_loss_script,
    netem_apply,
    netem_command,
    node_containers,
    node_names,
    running_inside,
    status_doc,
)
from chaos.targets.docker_api import DockerAPI, ExecResult, HelperState
from embedded_cluster.victims import replica_candidates, replica_order

pytestmark = pytest.mark.unit


def attrs(cid: str, service: str, number: int, ip: str, status: str = "running",
          ports: dict[str, Any] | None = None, oneoff: bool = False) -> dict[str, Any]:
    return {
        "Id": cid, "Name": f"/p-{service}-{number}", "Image": f"sha256:{service}-image",
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
    assert w1.image == "sha256:worker-image"  # a network-fault helper runs the node's own image
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


def test_helper_scripts_apply_then_hold_heal_on_sigterm_or_on_their_own():
    cut = cut_apply()
    assert "-j DROP" in cut and "statistic" not in cut and cut.endswith("echo how=iptables drop")
    held = helper_script(cut, 2.0).splitlines()
    assert held[0].startswith("heal() {") and HEAL_SCRIPT in held[0]
    assert held[1] == f"trap 'heal; echo \"{HEALED}\"; exit 0' TERM INT"  # the runner's SIGTERM heals
    assert held[2] == f"{{ {cut}; }} || {{ heal; exit 3; }}"  # a failed apply is undone
    assert held[3] == f'echo "{APPLIED}"'
    assert held[4:] == ["sleep 32 & wait $!", "heal", f'echo "{HEALED}"']  # heals by itself if the runner died
    once = helper_script(cut, None).splitlines()
    assert once[1] == ":" and once[-1] == f'echo "{APPLIED}"' and "sleep" not in "".join(once)  # stays until heal
    assert heal_script().splitlines() == [HEAL_SCRIPT, f'echo "{HEALED}"']
    loss = netem_apply(loss_pct=10)
    assert "tc qdisc add dev eth0 root netem loss 10%" in loss and "how=tc netem" in loss
    assert "--probability 0.1000" in loss and "how=iptables statistic" in loss  # no netem qdisc: iptables
    delay = netem_apply(delay_ms=50)
    assert "netem delay 50ms" in delay and "exit 4" in delay and "statistic" not in delay
    assert helper_how(f"how=tc netem\n{APPLIED}\n") == "tc netem" and helper_how("") == ""


class FakeClient:
    """docker.from_env()'s client, as far as the helper methods of DockerAPI use it."""

    def __init__(self) -> None:
        self.runs: list[tuple[Any, ...]] = []
        self.listed: list[dict[str, Any]] = []
        outer = self

        class Handle:
            def __init__(self, cid: str) -> None:
                self.id = cid

        class Containers:
            def run(self, image: str, command: list[str], **kw: Any) -> Handle:
                outer.runs.append((image, command, kw))
                return Handle("helper1")

            def list(self, **kw: Any) -> list[Handle]:
                outer.listed.append(kw)
                return [Handle("helper1")]

        self.containers = Containers()


def test_the_helper_joins_the_nodes_network_namespace_as_root_with_net_admin_only():
    api = DockerAPI()
    api._client = FakeClient()
    (w1,) = containers(W1)
    assert api.run_helper(w1, "echo hi") == "helper1"
    ((image, command, kw),) = api._client.runs
    assert image == "sha256:worker-image" and command == ["-c", "echo hi"] and kw["entrypoint"] == ["/bin/sh"]
    assert kw["network_mode"] == "container:bbbb2222"  # the node's namespace, nothing else of it
    assert kw["cap_drop"] == ["ALL"] and kw["cap_add"] == ["NET_ADMIN", "NET_RAW"] and kw["user"] == "0:0"
    assert kw["detach"] is True and kw["labels"] == {HELPER_LABEL: "bbbb2222"}
    assert kw["name"].startswith("p-worker-1-netfault-")
    assert api.helpers_of(w1) == ["helper1"]
    assert api._client.listed == [{"all": True, "filters": {"label": f"{HELPER_LABEL}=bbbb2222"}}]


# -- faults through a fake Docker ---------------------------------------------------------------


class FakeDocker:
    def __init__(self, docs: list[dict[str, Any]], probe: dict[str, Any] | None = None, tc_ok: bool = True) -> None:
        self.docs = {d["Id"]: json.loads(json.dumps(d)) for d in docs}
        self.probe = probe if probe is not None else PROBE
        self.tc_ok = tc_ok
        self.calls: list[tuple[str, str, Any]] = []
        self.dead_pids: set[int] = set()
        self.gone_pids: set[int] = set()  # exited before the kill (a stale view)
        self.helpers: dict[str, dict[str, Any]] = {}  # id -> node, script, state
        self.helper_error = ""  # every helper's apply fails with this on stderr

    def containers(self, project: str) -> list[Container]:
        return [container_from_attrs(d, project) for d in self.docs.values()]

    def _status(self, c: Container, status: str) -> None:
        self.docs[c.id]["State"]["Status"] = status

    def exec(self, container: Container, argv: list[str], timeout_s: float) -> ExecResult:
        self.calls.append(("exec", container.node or container.service, argv))
        if argv[:3] == ["python", "-m", "embedded_cluster.probe"]:
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

    # A helper "runs" its script: how= from the script's text, as the shell would choose it.
    def run_helper(self, target: Container, script: str) -> str:
        hid = f"helper{len(self.helpers) + 1}"
        self.calls.append(("helper", target.node or "", script))
        held = "trap 'heal" in script
        if script == heal_script():
            state = HelperState(False, 0, f"{HEALED}\n", "")
        elif self.helper_error:
            state = HelperState(False, 3, "", self.helper_error)
        elif "how=tc netem" in script and not self.tc_ok and "how=iptables statistic" not in script:
            state = HelperState(False, 4, "", "no netem qdisc: Error: Specified qdisc not found.")
        else:
            how = ("tc netem" if self.tc_ok else "iptables statistic") if "how=tc netem" in script else "iptables drop"
            state = HelperState(held, None if held else 0, f"how={how}\n{APPLIED}\n", "")
        self.helpers[hid] = {"node": target.node, "target": target.id, "script": script, "state": state,
                             "removed": False}
        return hid

    def helper_state(self, helper: str) -> HelperState:
        return self.helpers[helper]["state"]

    def stop_helper(self, helper: str) -> None:
        self.calls.append(("stop-helper", self.helpers[helper]["node"], helper))
        st = self.helpers[helper]["state"]
        if st.running:
            self.helpers[helper]["state"] = HelperState(False, 0, st.stdout + f"{HEALED}\n", "")

    def remove_helper(self, helper: str) -> None:
        self.helpers[helper]["removed"] = True

    def helpers_of(self, target: Container) -> list[str]:
        return [h for h, v in self.helpers.items() if v["target"] == target.id and not v["removed"]]


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
    # the load's metrics: on the compose network for Prometheus inside, on loopback from the host
    assert (inside.load_metrics_host, outside.load_metrics_host) == ("0.0.0.0", "127.0.0.1")
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
    from chaos.spec.experiment import Application

    out = cluster(d).deploy(Application(import_path="tests.e2e.fault_app:app"), "serve_core")
    (_, where, argv), = [c for c in d.calls if c[0] == "exec"]
    assert where == "head" and argv[:4] == ["python", "-m", "chaos.targets.deploy_app", "deploy"]
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


def _helpers(d: FakeDocker, node: str) -> list[str]:
    return [x[2] for x in d.calls if x[0] == "helper" and x[1] == node]


def _no_network_tools_in_the_nodes(d: FakeDocker) -> None:
    """Nothing ran tc or iptables in a node's container: they hold no NET_ADMIN."""
    assert not [x for x in d.calls if x[0] == "exec" and ("iptables" in str(x[2]) or "tc" in x[2][:1])]


def test_partition_cuts_from_a_helper_for_the_duration_then_heals():
    d = FakeDocker(DOCS)
    out = cluster(d).inject(fault("partition", node="w2", duration_s=3.0))
    assert out.ok and out.output is not None and out.output["detail"]["how"] == "iptables drop"
    (script,) = _helpers(d, "w2")
    assert script == helper_script(cut_apply(), 3.0)  # held: it heals when stopped
    assert ("stop-helper", "w2", "helper1") in d.calls
    assert d.helpers["helper1"]["removed"] and HEALED in d.helpers["helper1"]["state"].stdout
    assert not [x for x in d.calls if x[0] in ("pause", "unpause")]
    _no_network_tools_in_the_nodes(d)


def test_partition_without_iptables_in_the_image_names_the_fix():
    d = FakeDocker(DOCS)
    d.helper_error = "sh: 1: iptables: not found"
    out = cluster(d).inject(fault("partition", node="w2", duration_s=3.0))
    assert not out.ok and "iptables: not found" in (out.error or "") and "SERVE_CORE_NET_HELPER_IMAGE" in (out.error or "")
    assert d.helpers["helper1"]["removed"]


def test_a_partition_without_duration_stays_until_heal_which_stops_every_helper():
    d = FakeDocker(DOCS)
    c = cluster(d)
    assert c.inject(fault("partition", node="w1")).ok
    assert _helpers(d, "w1") == [helper_script(cut_apply(), None)] and d.helpers["helper1"]["removed"]
    d.helpers["stale"] = {"node": "w1", "target": "bbbb2222", "script": "", "removed": False,  # a dead runner's
                          "state": HelperState(True, None, f"{APPLIED}\n", "")}
    out = c.inject(fault("heal", node="w1"))
    assert out.ok and out.output["detail"]["helpers_stopped"] == 1
    assert _helpers(d, "w1")[-1] == heal_script()
    assert ("stop-helper", "w1", "stale") in d.calls and all(h["removed"] for h in d.helpers.values())
    _no_network_tools_in_the_nodes(d)


def test_a_network_fault_on_a_stopped_node_says_so():
    d = FakeDocker([HEAD, W1, attrs("cccc3333", "worker", 2, "", status="exited")])
    out = cluster(d).inject(fault("partition", node="w2", duration_s=1.0))
    assert not out.ok and "is exited" in (out.error or "") and not d.helpers


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
    assert _helpers(d, "w1") == [helper_script(netem_apply(loss_pct=5.0), 2.0)]
    d = FakeDocker(DOCS, tc_ok=False)
    out = cluster(d).inject(fault("netem", node="w1", args={"loss_pct": 5.0}, duration_s=2.0))
    assert out.ok and out.output is not None and out.output["detail"]["how"] == "iptables statistic"
    delay = cluster(FakeDocker(DOCS, tc_ok=False)).inject(fault("netem", node="w1", args={"delay_ms": 50.0}))
    assert not delay.ok and "no netem qdisc" in (delay.error or "") and "loss_pct" in (delay.error or "")
    _no_network_tools_in_the_nodes(d)


def test_interrupt_ends_a_held_fault_at_once():
    d = FakeDocker(DOCS)
    c = cluster(d)
    c.interrupt()
    assert c.inject(fault("partition", node="w1", args={"mode": "freeze"}, duration_s=3600.0)).ok
    assert d.docs["bbbb2222"]["State"]["Status"] == "running"
    assert c.inject(fault("partition", node="w2", duration_s=3600.0)).ok
    assert ("stop-helper", "w2", "helper1") in d.calls and d.helpers["helper1"]["removed"]


# -- the compose files themselves ---------------------------------------------------------------


def _compose(name: str) -> dict[str, Any]:
    import os

    import yaml

    with open(os.path.join(os.path.dirname(__file__), "..", "..", "compose", name)) as f:
        return yaml.safe_load(f)


def test_the_compose_file_runs_no_root_no_net_admin_no_socket_and_no_secret_on_a_command_line():
    doc = _compose("docker-compose.yml")
    assert "chaos" not in doc["services"]  # the runner with the Docker socket is opt-in
    for name, svc in doc["services"].items():
        assert str(svc.get("user", "")).split(":")[0] not in ("", "0", "root"), name
        assert not svc.get("cap_add") and not svc.get("privileged"), name
        assert not [v for v in svc.get("volumes") or [] if "docker.sock" in str(v)], name
        shown = json.dumps([svc.get("command"), svc.get("entrypoint"), svc.get("environment")])
        assert "PASSWORD:" not in shown and "TOKEN:" not in shown and "${" not in shown.replace("${SERVE_CORE_", ""), name
    env = doc["x-ray-env"]
    assert env["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_token" and "RAY_AUTH_TOKEN" not in env
    redis = doc["services"]["redis"]["command"]
    assert "--requirepass" not in redis and redis[redis.index("--tls-auth-clients") + 1] == "yes"
    assert redis[redis.index("--port") + 1] == "0"  # no plain-text port
    assert doc["services"]["head"]["environment"]["RAY_REDIS_ADDRESS"].startswith("rediss://")
    assert set(doc["secrets"]) >= {"ray_token", "redis_key", "redis_client_key", "grafana_admin_password"}
    local = _compose("docker-compose.local.yml")
    assert "chaos" not in local["services"]  # else `up` would start a half-defined runner
    chaos = _compose("docker-compose.chaos.yml")["services"]["chaos"]
    assert chaos["profiles"] == ["tools"] and str(chaos["user"]).split(":")[0] == "1000"
    assert "/var/run/docker.sock:/var/run/docker.sock" in chaos["volumes"]


def test_check_waits_for_a_project_that_is_still_starting_with_progress_then_names_the_timeout():
    """Issue 16: `up -d` returns in seconds and the runner used to exit 3 at once."""
    d = FakeDocker(DOCS, probe={"error": "connection refused (the GCS is starting)"})
    c, said = cluster(d), []
    c.say = said.append
    answers_after = c.monotonic() + 40

    def probe_then_answer(container, argv, timeout_s):
        if argv[:3] == ["python", "-m", "embedded_cluster.probe"] and c.monotonic() >= answers_after:
            return ExecResult(0, json.dumps(PROBE) + "\n", "")
        return FakeDocker.exec(d, container, argv, timeout_s)

    d.exec = probe_then_answer
    assert list(c.check().names) == ["head", "w1", "w2"]
    assert said and "is starting (connection refused (the GCS is starting)); waiting up to 240s" in said[0]
    assert len(said) == 3  # at 0, 15 and 30 s: progress, not a line per poll

    never = cluster(FakeDocker(DOCS, probe={"error": "connection refused"}))
    never.say = lambda m: None
    with pytest.raises(TargetError, match="Ray does not answer") as info:
        never.check()
    assert "still not after 240s" in info.value.cause and "logs head" in info.value.fix
