"""The embedded cluster's pure pieces: address and port plans, the state file, the
Prometheus config and targets, the Ray and Redis command lines, the status document."""

import json
import os
import signal
import stat
import subprocess
import sys

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from embedded_cluster import commands, faults, layout, processes, prometheus, ray_nodes, redis, status, victims
from embedded_cluster.errors import LocalClusterError, MissingBinaryError
from embedded_cluster.processes import require_binary
from embedded_cluster.state import ClusterState, ProcessRecord, load, write_atomic
from serve_core.errors import ConfigError

# -- address and port allocation --------------------------------------------------------------


def all_ports(node):
    return list(node.ports.fixed().values()) + list(range(node.ports.min_worker, node.ports.max_worker + 1)) + [node.proxy_port]


def test_netns_plan_gives_each_node_its_own_address_namespace_and_veth():
    p = layout.plan("default", 3, layout.NETNS)
    assert [n.name for n in p.nodes] == ["head", "w1", "w2", "w3"]
    assert [n.address for n in p.nodes] == ["10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.5"]
    assert p.host_address == "10.77.0.1" and p.bridge == "scbr0"
    assert len({n.namespace for n in p.nodes}) == 4 and all(n.namespace.startswith("sc-") for n in p.nodes)
    assert all(len(n.veth) <= 15 for n in p.nodes)  # Linux interface names
    assert p.gcs_address == "10.77.0.2:6392"
    assert p.redis_address == "10.77.0.1:6391" and p.prometheus_url == "http://10.77.0.1:9391"
    # Separate machines: every node the same ports, its proxy on its own address.
    assert len({n.ports for n in p.nodes}) == 1 and {n.proxy_port for n in p.nodes} == {8000}
    for n in p.nodes:
        assert n.labels == {layout.PROXY_HOST_LABEL: n.address}


def test_loopback_plan_gives_each_node_distinct_ports_and_proxy_port():
    p = layout.plan("default", 3, layout.LOOPBACK, layout.PortSettings(proxy=8411))
    assert {n.address for n in p.nodes} == {layout.LOOPBACK_NODE_ADDRESS}
    assert p.host_address == "127.0.0.1" and p.bridge is None
    assert all(n.namespace is None and n.veth is None for n in p.nodes)
    assert [n.proxy_port for n in p.nodes] == [8411, 8412, 8413, 8414]
    assert [n.labels for n in p.nodes] == [{layout.PROXY_PORT_LABEL: str(8411 + i)} for i in range(4)]
    ports = [port for n in p.nodes for port in all_ports(n)] + [p.ports.gcs, p.ports.redis, p.ports.prometheus]
    assert len(ports) == len(set(ports))
    # Outside Ray's default worker ports (10002-19999) and the ephemeral range (32768+).
    assert all(20000 <= port < 32768 for n in p.nodes for port in n.ports.fixed().values())


def test_head_gets_no_cpus_by_default_and_workers_get_theirs():
    p = layout.plan("default", 2, layout.LOOPBACK, worker_cpus=3)
    assert [n.num_cpus for n in p.nodes] == [0, 3, 3]
    assert [n.role for n in p.nodes] == ["head", "worker", "worker"]


def test_label_names_match_what_the_controller_reads():
    from serve_core import ray_seam

    assert layout.PROXY_PORT_LABEL == ray_seam.PROXY_PORT_LABEL
    assert layout.PROXY_HOST_LABEL == ray_seam.PROXY_HOST_LABEL
    assert layout.labels_arg({"b/x": "2", "a/y": "1"}) == "a/y=1,b/x=2"


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "Bad Name"}, "--name"),
    ({"name": "much-too-long-name"}, "--name"),
    ({"workers": -1}, "--workers"),
    ({"workers": layout.MAX_WORKERS + 1}, "--workers"),
    ({"ports": layout.PortSettings(redis=80)}, "--redis-port"),
    ({"ports": layout.PortSettings(node_base=65500)}, "--node-port-base"),
    ({"ports": layout.PortSettings(proxy=23005)}, "--proxy-port"),  # inside the head's Ray ports
    ({"ports": layout.PortSettings(gcs=6391)}, "--gcs-port"),  # Redis's port, and all share the host's stack
])
def test_bad_plans_name_the_option(kwargs, field):
    with pytest.raises(ConfigError) as e:
        layout.plan(**{"name": "default", "workers": 2, "mode": layout.LOOPBACK, **kwargs})
    assert e.value.field == field


def test_ports_may_repeat_across_network_namespaces():
    p = layout.plan("default", 2, layout.NETNS, layout.PortSettings(gcs=6391))  # Redis is on the host's stack
    assert p.gcs_address == "10.77.0.2:6391" and p.redis_address == "10.77.0.1:6391"


def test_plan_survives_the_state_file_round_trip():
    p = layout.plan("x1", 2, layout.NETNS)
    assert layout.ClusterPlan.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert p.node("w2").address == "10.77.0.4"
    with pytest.raises(ConfigError):
        p.node("w9")


# -- state file -------------------------------------------------------------------------------


def make_state(tmp_path, mode=layout.NETNS):
    s = ClusterState(layout.plan("t", 1, mode), str(tmp_path / "t"), "tok" * 10, "pw")
    s.add(ProcessRecord("redis", "redis", 101, 5, ["redis-server", "x.conf"], "/l/redis.log"))
    s.add(ProcessRecord("head", "head", 102, 6, ["ray", "start"], "/l/head.log", "sc-head",
                        {"raylet": {"pid": 110, "start_time": 7}}))
    s.netns_created, s.links_created, s.forward_rule = ["sc-head"], ["scbr0", "scv-head"], ["FORWARD", "-j", "ACCEPT"]
    s.node_ids = {"head": "abc"}
    return s


def test_state_file_round_trip_and_permissions(tmp_path):
    s = make_state(tmp_path)
    s.save()
    assert stat.S_IMODE(os.stat(s.path).st_mode) == 0o600  # it holds the token
    loaded = load(str(tmp_path), "t")
    assert loaded is not None and loaded.to_dict() == s.to_dict()
    assert loaded.process("head").children["raylet"]["pid"] == 110
    doc = json.load(open(s.path))
    assert doc["ray_auth_token"] == "tok" * 10 and doc["head_address"] == "10.77.0.2:6392"
    assert [p["role"] for p in doc["processes"]] == ["redis", "head"]


def test_adding_a_process_again_replaces_it(tmp_path):
    s = make_state(tmp_path)
    s.add(ProcessRecord("redis", "redis", 999, 1, ["redis-server"], "/l"))
    assert [p.pid for p in s.processes] == [102, 999]


def test_missing_state_is_none_and_a_broken_one_names_the_file(tmp_path):
    assert load(str(tmp_path), "nothing") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text("{not json")
    with pytest.raises(LocalClusterError) as e:
        load(str(tmp_path), "bad")
    assert "bad/state.json" in str(e.value)
    (tmp_path / "bad" / "state.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(LocalClusterError):
        load(str(tmp_path), "bad")


def test_write_atomic_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "f.json"
    write_atomic(str(path), "one")
    write_atomic(str(path), "two")
    assert path.read_text() == "two" and os.listdir(tmp_path) == ["f.json"]


def test_socket_path_limit_is_checked():
    commands.check_socket_paths("/tmp/serve_core_cluster/default")
    with pytest.raises(ConfigError) as e:
        commands.check_socket_paths("/tmp/" + "x" * 60 + "/default")
    assert "--state-root" in str(e.value)


# -- Prometheus -------------------------------------------------------------------------------


def test_prometheus_config_scrapes_every_job_every_second_from_file_sd():
    doc = yaml.safe_load(yaml.safe_dump(prometheus.config("/s/default", "default")))
    assert doc["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert set(jobs) == {"ray", "serve_core", "loadgen"}
    for name, job in jobs.items():
        assert job["scrape_interval"] == "1s"
        assert job["file_sd_configs"][0]["files"] == [f"/s/default/prometheus/targets/{name}.json"]


def test_ray_targets_from_the_plan_and_from_alive_nodes():
    p = layout.plan("default", 2, layout.NETNS)
    groups = prometheus.ray_target_groups(p)
    assert [g["targets"] for g in groups] == [["10.77.0.2:23002"], ["10.77.0.3:23002"], ["10.77.0.4:23002"]]
    assert [g["labels"]["node"] for g in groups] == ["head", "w1", "w2"]
    alive = [{"address": "10.77.0.4", "metrics_port": 23002, "node_id": "n2"},
             {"address": "10.77.0.9", "metrics_port": 23002, "node_id": "n9"},
             {"address": "10.77.0.2", "metrics_port": 0, "node_id": "nx"}]
    groups = prometheus.ray_target_groups(p, alive)
    assert [(g["targets"], g["labels"]["node"]) for g in groups] == [(["10.77.0.4:23002"], "w2"), (["10.77.0.9:23002"], "10.77.0.9")]
    assert groups[0]["labels"]["ray_node_id"] == "n2"


def test_serve_core_targets_are_labelled_by_component():
    status = {
        "proxies": {"n1": {"host": "10.77.0.3", "port": 8000, "metrics_port": 5001}},
        "applications": {"a": {"deployments": {"d": {"replicas": [{"host": "10.77.0.3", "metrics_port": 4001}]}}}},
    }
    groups = prometheus.serve_core_target_groups(["10.77.0.2:3000", "10.77.0.3:5001", "10.77.0.3:4001", "10.77.0.3:5001"], status)
    by = {g["labels"]["component"]: g for g in groups}
    assert by["controller"]["targets"] == ["10.77.0.2:3000"]
    assert by["proxy"]["targets"] == ["10.77.0.3:5001"]
    assert by["replica"]["targets"] == ["10.77.0.3:4001"]
    assert prometheus.serve_core_target_groups([], None) == []


def test_write_targets_only_when_changed(tmp_path):
    path = str(tmp_path / "t" / "ray.json")
    assert prometheus.write_targets(path, [{"targets": ["a:1"], "labels": {}}])
    assert not prometheus.write_targets(path, [{"targets": ["a:1"], "labels": {}}])
    assert prometheus.write_targets(path, [])
    assert json.load(open(path)) == []


# -- Redis and Ray command lines --------------------------------------------------------------


def test_redis_config_has_password_persistence_and_one_address():
    text = redis.config_text("10.77.0.1", 6391, "s3cret", "/s/redis")
    lines = set(text.splitlines())
    assert {"bind 10.77.0.1", "port 6391", "requirepass s3cret", "dir /s/redis", "appendonly yes"} <= lines
    assert redis._command("AUTH", "pw") == b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"


def test_ray_commands_for_head_and_worker():
    p = layout.plan("default", 1, layout.NETNS)
    head = ray_nodes.node_command(p, p.head, "/s/ray/head", "pw")
    assert head[:3] == ["ray", "start", "--block"]
    assert {"--head", "--port=6392", "--num-cpus=0", "--redis-password=pw", "--include-dashboard=false",
            "--node-ip-address=10.77.0.2", "--metrics-export-port=23002", "--temp-dir=/s/ray/head",
            "--labels=serve-core/proxy-host=10.77.0.2"} <= set(head)
    worker = ray_nodes.node_command(p, p.workers[0], "/s/ray/w1", "pw")
    assert "--address=10.77.0.2:6392" in worker and "--num-cpus=2" in worker
    assert not any(a.startswith(("--head", "--port=", "--redis-password")) for a in worker)
    lp = layout.plan("default", 1, layout.LOOPBACK, layout.PortSettings(proxy=8411))
    assert "--labels=serve-core/proxy-port=8412" in ray_nodes.node_command(lp, lp.workers[0], "/t", "pw")


def test_cluster_env_has_the_token_and_health_check_settings(tmp_path):
    s = make_state(tmp_path)
    env = ray_nodes.cluster_env(s, {"RAY_ADDRESS": "elsewhere:1", "PATH": "/bin"})
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == s.token
    assert "RAY_ADDRESS" not in env and env["PATH"] == "/bin"
    assert env["RAY_health_check_period_ms"] == "1000" and env["RAY_health_check_failure_threshold"] == "3"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == ray_nodes.package_root()
    assert ray_nodes.driver_env(s, {})["RAY_ADDRESS"] == "10.77.0.2:6392"


def test_missing_binaries_say_how_to_install_them():
    with pytest.raises(MissingBinaryError) as e:
        require_binary("serve-core-no-such-binary", "redis-server")
    assert "apt-get install redis-server" in str(e.value)
    assert isinstance(e.value, LocalClusterError)


# -- status document --------------------------------------------------------------------------


def test_status_doc_places_replicas_and_proxies_on_nodes(tmp_path):
    s = ClusterState(layout.plan("t", 2, layout.NETNS), str(tmp_path), "tok", "pw")
    for n in s.plan.nodes:
        s.add(ProcessRecord(n.role, n.name, 100 + len(s.processes), 1, ["ray"], "/l", n.namespace))
    ray_view = {
        "nodes": [
            {"node_id": "H", "alive": True, "address": "10.77.0.2", "metrics_port": 23002, "resources": {"CPU": 0}},
            {"node_id": "A", "alive": True, "address": "10.77.0.3", "metrics_port": 23002, "resources": {"CPU": 2.0}},
            {"node_id": "OLD", "alive": False, "address": "10.77.0.4", "metrics_port": 23002, "resources": {}},
            {"node_id": "B", "alive": True, "address": "10.77.0.4", "metrics_port": 23002, "resources": {"CPU": 2.0}},
        ],
        "serve": {
            "proxies": {"A": {"state": "HEALTHY", "host": "10.77.0.3", "port": 8000}},
            "applications": {"app": {"status": "RUNNING", "route_prefix": "/", "deployments": {"d": {
                "status": "HEALTHY", "replica_states": {"RUNNING": 3}, "target_replicas": 3,
                "replicas": [{"node_id": "A"}, {"node_id": "B"}, {"node_id": "B"}]}}}},
        },
    }
    live = {"processes": {p.name: True for p in s.processes}, "redis": "PONG", "prometheus": True}
    doc = status.status_doc(s, ray_view, live)
    assert doc["healthy"] is True
    assert [(n["name"], n["ray_node_id"], n["alive"]) for n in doc["nodes"]] == [("head", "H", True), ("w1", "A", True), ("w2", "B", True)]
    assert [n["replicas"] for n in doc["nodes"]] == [{}, {"app/d": 1}, {"app/d": 2}]
    assert doc["applications"]["app"]["deployments"]["d"]["replicas_per_node"] == {"w1": 1, "w2": 2}
    assert doc["proxies"] == [{"node": "w1", "state": "HEALTHY", "address": "10.77.0.3:8000"}]
    live["processes"]["w2"] = False
    assert status.status_doc(s, ray_view, live)["healthy"] is False
    assert status.status_doc(s, {"error": "no answer"}, {**live, "processes": {p.name: True for p in s.processes}})["healthy"] is False


def test_kill_faults_use_the_refreshers_view_only_while_it_is_fresh(tmp_path, monkeypatch):
    from embedded_cluster import probe

    s = ClusterState(layout.plan("t", 1, layout.LOOPBACK), str(tmp_path), "tok", "pw")
    assert probe.recent(s) is None  # none written yet
    probe.write_recent(str(tmp_path), {"nodes": [], "serve": {"applications": {}}, "serve_error": ""})
    assert probe.recent(s)["serve"] == {"applications": {}}
    later = probe.time.time() + probe.RECENT_MAX_AGE_S + 1
    monkeypatch.setattr(probe.time, "time", lambda: later)
    assert probe.recent(s) is None  # too old: faults ask Ray themselves
    monkeypatch.undo()
    probe.write_recent(str(tmp_path), {"nodes": [], "serve": None, "serve_error": "RuntimeError: no controller"})
    assert probe.recent(s) is None


def test_freeze_stops_the_nodes_process_tree_and_thaw_resumes_it(tmp_path):
    # A stand-in node: a session leader with a child, as `ray start` and its raylet.
    node = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"],
                            start_new_session=True)
    try:
        assert processes.wait_until(lambda: len(processes.collect({node.pid: 0})) == 2, 10.0, 0.05)
        tree = processes.collect({node.pid: 0})
        s = ClusterState(layout.plan("t", 1, layout.LOOPBACK), str(tmp_path), "tok", "pw")
        s.add(ProcessRecord("worker", "w1", node.pid, processes.start_time(node.pid), ["ray", "start"], "/l"))
        assert faults.freeze_node(s, "w1") == 2
        assert processes.wait_until(lambda: all(processes._state(p) == "T" for p in tree), 5.0, 0.05)
        assert faults.thaw_node(s, "w1") == 2
        assert processes.wait_until(lambda: all(processes._state(p) in ("S", "R") for p in tree), 5.0, 0.05)
    finally:
        os.killpg(node.pid, signal.SIGKILL)
        node.wait()


# -- victims: the process a fault hits, chosen the same on every target --------------------------

def _view(replicas):
    return {"serve": {"applications": {"app": {"deployments": {
        dep: {"replicas": [r for r in replicas if r["dep"] == dep]} for dep in ("A", "B")}}}}}


_replica = st.fixed_dictionaries({
    "dep": st.sampled_from(["A", "B"]), "state": st.sampled_from(["RUNNING", "STARTING", "STOPPING"]),
    "pid": st.integers(0, 50), "node_id": st.sampled_from(["n1", "n2"]), "replica_id": st.uuids().map(str)})


@given(st.lists(_replica, max_size=12), st.sampled_from([None, "A", "B"]), st.sampled_from([None, "head", "w1"]),
       st.integers(0, 2**32))
def test_a_seeded_kill_tries_only_matching_running_replicas_in_the_same_order_every_time(replicas, dep, node, seed):
    names = {"n1": "head", "n2": "w1"}
    found = victims.replica_candidates(_view(replicas), names, deployment=dep, node=node)
    assert all(r["state"] == "RUNNING" and r["pid"] for r in replicas if r["replica_id"] in {c["replica_id"] for c in found})
    assert all(dep in (None, c["deployment"]) and node in (None, c["node"]) for c in found)
    matching = [r for r in replicas if r["state"] == "RUNNING" and r["pid"] and dep in (None, r["dep"])
                and node in (None, names[r["node_id"]])]
    assert len(found) == len(matching)
    order = victims.replica_order(found, seed)
    assert sorted(map(str, order)) == sorted(map(str, found)) and order == victims.replica_order(found, seed)


def test_the_proxy_and_controller_of_the_backend_asked_for():
    view = {"serve": {"proxies": {"n1": {"pid": 11, "host": "10.0.0.1", "port": 8000}}, "controller_pid": 5},
            "ray_serve": {"proxies": {"n2": {"pid": 22, "host": "0.0.0.0", "port": 8000}}, "controller_pid": 6},
            "controller_pid": 5}
    names = {"n1": "head", "n2": "w1"}
    assert victims.proxy_on(view, names, "head") == {"node": "head", "pid": 11, "address": "10.0.0.1:8000"}
    assert victims.proxy_on(view, names, "w1") is None
    assert victims.proxy_on(view, names, "w1", "ray_serve")["pid"] == 22
    assert victims.controller_pid(view) == 5 and victims.controller_pid(view, "ray_serve") == 6
    assert victims.controller_pid({}) == 0
