"""The embedded target: commands built for each fault, status parsed into a snapshot and
proxy URLs, command failures translated; all with a fake command runner (no subprocess)."""

import json

import pytest

from chaos.spec.experiment import Application, ComposeTarget
from chaos.spec.schedule import PlannedFault
from chaos.targets import make_target
from chaos.targets.base import TargetError, deploy_command, proxy_urls_from_status, snapshot_from_status
from chaos.targets.commands import CommandResult
from chaos.targets.deploy_app import swap_serve_import
from chaos.targets.embedded import EmbeddedCluster, fault_args

pytestmark = pytest.mark.unit

STATUS = {
    "cluster": "c", "mode": "netns", "healthy": True,
    "nodes": [
        {"name": "head", "role": "head", "address": "10.77.0.2", "alive": True, "process": {"pid": 1, "alive": True}},
        {"name": "w1", "role": "worker", "address": "10.77.0.3", "alive": True, "process": {"pid": 2, "alive": True}},
        {"name": "w2", "role": "worker", "address": "10.77.0.4", "alive": False, "process": {"pid": 3, "alive": False}},
    ],
    "proxies": [
        {"node": "head", "state": "HEALTHY", "address": "10.77.0.2:8000"},
        {"node": "w1", "state": "HEALTHY", "address": "10.77.0.3:8000"},
        {"node": "w2", "state": "FAILED", "address": "10.77.0.4:8000"},
    ],
    "applications": {"default": {"status": "RUNNING", "route_prefix": "/", "deployments": {
        "Work": {"status": "HEALTHY", "replicas": {"RUNNING": 2}, "replicas_per_node": {"w1": 2}}}}},
    "prometheus": {"url": "http://10.77.0.1:9391", "ready": True},
}


class FakeRunner:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []
        self.interrupted = 0

    def run(self, argv, timeout_s, interruptible=False):
        self.calls.append((argv, timeout_s, interruptible))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        rc, out, err = answer
        return CommandResult(argv, rc, out, err, 0.1)

    def interrupt(self):
        self.interrupted += 1


def status_answer(doc=STATUS, rc=0):
    return (rc, json.dumps(doc, indent=2), "")


def pf(action, **kw):
    return PlannedFault(20.0, action, action, **kw)


# -- pure helpers ------------------------------------------------------------------------------


def test_fault_args_per_action():
    sc = ["--backend", "serve_core"]
    assert fault_args(pf("kill-replica", deployment="Work", app="default", node="w1", seed=5)) == sc + [
        "--deployment", "Work", "--app", "default", "--node", "w1", "--seed", "5"]
    assert fault_args(pf("kill-replica")) == sc
    assert fault_args(pf("kill-proxy", node="w1")) == sc + ["--node", "w1"]
    assert fault_args(pf("kill-controller")) == sc
    assert fault_args(pf("kill-controller"), "ray_serve") == ["--backend", "ray_serve"]
    assert fault_args(pf("kill-gcs", args={"down_for_s": 10.0})) == ["--down-for", "10"]
    assert fault_args(pf("kill-node", node="w2")) == ["--node", "w2"]
    assert fault_args(pf("restart-node", node="head")) == ["--node", "head"]
    assert fault_args(pf("partition", node="w1", duration_s=20.0)) == ["--node", "w1", "--for", "20"]
    assert fault_args(pf("partition", node="w1")) == ["--node", "w1"]  # until heal
    assert fault_args(pf("partition", node="w1", args={"mode": "freeze"}, duration_s=2.0)) == [
        "--node", "w1", "--freeze", "--for", "2"]
    assert fault_args(pf("partition", node="w1", args={"mode": "cut"})) == ["--node", "w1"]
    assert fault_args(pf("heal", node="w1")) == ["--node", "w1"]
    assert fault_args(pf("netem", node="w1", args={"loss_pct": 5.0, "delay_ms": 50.0}, duration_s=30.0)) == [
        "--node", "w1", "--delay-ms", "50", "--loss-pct", "5", "--for", "30"]
    assert fault_args(pf("cpu-burn", node="w1", args={"cores": 2}, duration_s=10.0)) == [
        "--node", "w1", "--cores", "2", "--for", "10"]


def test_deploy_command_per_backend():
    app = Application(import_path="tests.e2e.fault_app:app", route="/api", name="web")
    assert deploy_command(app, "serve_core", python="py")[:6] == [
        "py", "-m", "chaos.targets.deploy_app", "deploy", "--backend", "serve_core"]
    rs = deploy_command(app, "ray_serve", python="py")
    assert rs == ["py", "-m", "chaos.targets.deploy_app", "deploy", "--backend", "ray_serve", "--name", "web",
                  "--route-prefix", "/api", "--swap-import", "tests.e2e.fault_app:app"]
    native = Application(import_path="tests.e2e.fault_app:app", swap_import=False)
    assert deploy_command(native, "serve_core", python="py") == [  # the driver also stops the other backend
        "py", "-m", "chaos.targets.deploy_app", "deploy", "--backend", "serve_core", "--name", "default", "--route-prefix", "/",
        "tests.e2e.fault_app:app"]
    per_backend = Application(import_paths={"ray_serve": "a.b:app", "serve_core": "c.d:app"})
    assert deploy_command(per_backend, "ray_serve", python="py")[-1] == "a.b:app"
    assert "--swap-import" not in deploy_command(per_backend, "ray_serve", python="py")
    # Configs go through a driver that stops the other backend first (both listen on port 8000).
    assert deploy_command(Application(config="serve.yaml"), "ray_serve", python="py") == [
        "py", "-m", "chaos.targets.deploy_config", "--backend", "ray_serve", "serve.yaml"]
    fresh = Application(config="serve.yaml", fresh=True)  # and deletes the app first
    assert deploy_command(fresh, "ray_serve", python="py") == [
        "py", "-m", "chaos.targets.deploy_config", "--backend", "ray_serve", "--fresh", "serve.yaml"]
    # A config with serve_core-only fields (idempotent) and its Ray Serve twin.
    twin = Application(config="serve.yaml", configs={"ray_serve": "serve_rs.yaml"})
    assert deploy_command(twin, "ray_serve", python="py")[-1] == "serve_rs.yaml"
    assert deploy_command(twin, "serve_core", python="py")[-1] == "serve.yaml"
    assert twin.deploys("ray_serve") == "serve_rs.yaml"


def test_snapshot_from_status():
    snap = snapshot_from_status(STATUS)
    assert [(n.name, n.role, n.alive) for n in snap.nodes] == [
        ("head", "head", True), ("w1", "worker", True), ("w2", "worker", False)]
    assert snap.deployments is not None
    (d,) = snap.deployments
    assert (d.app, d.name, d.nodes) == ("default", "Work", ("w1", "w1"))
    assert snap.replica_nodes("Work", None) == ["w1"]


def test_proxy_urls_serve_core():
    assert proxy_urls_from_status(STATUS, "serve_core", ["workers"]) == ["http://10.77.0.3:8000"]  # w2's failed
    assert proxy_urls_from_status(STATUS, "serve_core", ["head"]) == ["http://10.77.0.2:8000"]
    assert proxy_urls_from_status(STATUS, "serve_core", ["all"]) == ["http://10.77.0.2:8000", "http://10.77.0.3:8000"]
    assert proxy_urls_from_status(STATUS, "serve_core", ["w1"]) == ["http://10.77.0.3:8000"]


def test_proxy_urls_wildcard_host_becomes_the_node_address():
    doc = {**STATUS, "proxies": [{"node": "w1", "state": "HEALTHY", "address": "0.0.0.0:8001"}]}
    assert proxy_urls_from_status(doc, "serve_core", ["all"]) == ["http://10.77.0.3:8001"]


def test_proxy_urls_ray_serve():
    assert proxy_urls_from_status(STATUS, "ray_serve", ["workers"]) == ["http://10.77.0.3:8000", "http://10.77.0.4:8000"]
    loopback = {**STATUS, "mode": "loopback"}
    assert proxy_urls_from_status(loopback, "ray_serve", ["workers"]) == ["http://127.0.0.1:8000"]
    # Ray Serve runs proxies only on nodes with a replica (and the head): one replica, on w2.
    one = {**STATUS, "ray_serve": {"proxies": [{"node": "head"}, {"node": "w2"}], "applications": {}}}
    assert proxy_urls_from_status(one, "ray_serve", ["workers"]) == ["http://10.77.0.4:8000"]


def test_swap_serve_import():
    src = "import asyncio\nimport serve_core as serve\n\n@serve.deployment\nclass A: ...\n"
    assert "from ray import serve\n" in swap_serve_import(src, "ray_serve")
    assert swap_serve_import(src, "serve_core") == src
    ray_src = "from ray import serve  # noqa\nx = 1\n"
    assert swap_serve_import(ray_src, "serve_core").startswith("import serve_core as serve\n")
    with pytest.raises(ValueError, match="import_paths per backend"):
        swap_serve_import("from serve_core import deployment\n", "ray_serve")


def test_compose_targets_are_driven_by_the_compose_cluster():
    from chaos.targets.compose import ComposeCluster

    target = make_target(ComposeTarget(project="p"), backend="ray_serve")  # no Docker call yet
    assert isinstance(target, ComposeCluster)
    assert (target.project, target.backend, target.description) == ("p", "ray_serve", "compose:p")


# -- the cluster through a fake command line ---------------------------------------------------


def test_commands_carry_the_name_and_state_root():
    runner = FakeRunner(status_answer())
    c = EmbeddedCluster("c1", state_root="/tmp/r", cli=["sc"], runner=runner)
    c.status()
    assert runner.calls[0][0] == ["sc", "cluster", "status", "--name", "c1", "--state-root", "/tmp/r", "--json"]


def test_check_unreachable_cluster_names_the_fix():
    runner = FakeRunner((2, "", "error: no cluster named 'c1' is up: there is no state file"))
    with pytest.raises(TargetError) as info:
        EmbeddedCluster("c1", cli=["sc"], runner=runner).check()
    e = info.value
    assert "cannot reach cluster 'c1'" in e.what and "no cluster named" in e.cause
    assert "serve-core cluster up --name c1" in e.fix


def test_check_ray_not_answering():
    runner = FakeRunner(status_answer({**STATUS, "ray_error": "Ray did not answer within 45s"}, rc=1))
    with pytest.raises(TargetError) as info:
        EmbeddedCluster("c1", cli=["sc"], runner=runner).check()
    assert "Ray does not answer" in info.value.what and "restart-node" in info.value.fix


def test_check_refuses_a_cluster_with_a_node_down():
    runner = FakeRunner(status_answer(rc=1))  # unhealthy status still prints the document
    with pytest.raises(TargetError) as info:
        EmbeddedCluster("c1", cli=["sc"], runner=runner).check()
    assert "w2" in info.value.cause and "restart-node --name c1 --node w2" in info.value.fix


def test_check_returns_the_snapshot():
    healthy = json.loads(json.dumps(STATUS))
    healthy["nodes"][2]["alive"] = True
    healthy["nodes"][2]["process"]["alive"] = True
    snap = EmbeddedCluster("c1", cli=["sc"], runner=FakeRunner(status_answer(healthy))).check()
    assert snap.workers == ["w1", "w2"]


def test_status_timeout():
    with pytest.raises(TargetError) as info:
        EmbeddedCluster("c1", cli=["sc"], runner=FakeRunner((None, "", ""))).status()
    assert "did not answer" in info.value.what


def test_inject_parses_the_fault_json():
    out = {"fault": "kill-node", "target": {"node": "w1"}, "started": 100.5, "ended": 101.0, "detail": {"processes": 9}}
    runner = FakeRunner((0, json.dumps(out) + "\n", ""))
    c = EmbeddedCluster("c1", cli=["sc"], runner=runner)
    outcome = c.inject(pf("kill-node", node="w1"))
    assert outcome.ok and outcome.output == out and (outcome.started, outcome.ended) == (100.5, 101.0)
    argv, timeout, interruptible = runner.calls[0]
    assert argv == ["sc", "cluster", "fault", "kill-node", "--name", "c1", "--json", "--node", "w1"]
    assert not interruptible and timeout >= 60


def test_inject_held_fault_is_interruptible_with_a_longer_timeout():
    runner = FakeRunner((0, json.dumps({"fault": "partition", "started": 1, "ended": 21}), ""))
    c = EmbeddedCluster("c1", cli=["sc"], runner=runner)
    short = c.inject(pf("heal", node="w1"))
    held = c.inject(pf("partition", node="w1", duration_s=300.0))
    assert short.ok and held.ok
    assert runner.calls[1][2] is True and runner.calls[1][1] >= runner.calls[0][1] + 300
    c.interrupt()
    assert runner.interrupted == 1


def test_inject_failure_is_returned_with_the_message():
    runner = FakeRunner((1, "", "error: no running replica to kill: none matches deployment=Nope; check ...\n"))
    outcome = EmbeddedCluster("c1", cli=["sc"], runner=runner).inject(pf("kill-replica", deployment="Nope"))
    assert not outcome.ok and "no running replica to kill" in outcome.error and outcome.argv[3] == "kill-replica"


def test_inject_timeout():
    outcome = EmbeddedCluster("c1", cli=["sc"], runner=FakeRunner((None, "", ""))).inject(pf("kill-controller"))
    assert not outcome.ok and "did not finish within" in outcome.error


def test_deploy_runs_through_cluster_exec_and_reports_failure():
    runner = FakeRunner((1, "", "ModuleNotFoundError: No module named 'nope'"))
    c = EmbeddedCluster("c1", cli=["sc"], runner=runner)
    with pytest.raises(TargetError) as info:
        c.deploy(Application(import_path="nope:app"), "serve_core")
    argv = runner.calls[0][0]
    assert argv[:6] == ["sc", "cluster", "exec", "--name", "c1", "--"]
    assert "No module named" in info.value.cause and "by hand" in info.value.fix


def test_redeploy_repeats_the_last_deploy():
    runner = FakeRunner((0, "deployed", ""))
    c = EmbeddedCluster("c1", cli=["sc"], runner=runner)
    assert not c.inject(pf("redeploy")).ok  # nothing deployed yet
    c.deploy(Application(import_path="a.b:app"), "serve_core")
    assert c.inject(pf("redeploy")).ok
    assert runner.calls[-1][0] == runner.calls[0][0]


def test_a_deploy_fault_applies_its_config_through_cluster_exec():
    runner = FakeRunner((0, "deployed application 'rollout' at /", ""), (1, "", "DeploymentFailedError: rolled back"))
    c = EmbeddedCluster("c1", cli=["sc"], runner=runner, backend="serve_core")
    out = c.inject(pf("deploy", args={"config": "examples/rollout/serve_v2.yaml"}))
    assert out.ok and out.output["detail"]["config"] == "examples/rollout/serve_v2.yaml"
    assert runner.calls[0][0][-4:] == ["chaos.targets.deploy_config", "--backend", "serve_core", "examples/rollout/serve_v2.yaml"]
    failed = c.inject(pf("deploy", args={"config": "examples/rollout/serve_v2.yaml"}))
    assert not failed.ok and "rolled back" in failed.error


def test_wait_ready_polls_until_every_proxy_answers():
    answers = {"http://a:8000/": [None, 404, 200], "http://b:8000/": [503, 405]}
    now = [0.0]
    c = EmbeddedCluster("c1", cli=["sc"], runner=FakeRunner(status_answer()),
                        get=lambda url: answers[url].pop(0) if len(answers[url]) > 1 else answers[url][0],
                        sleep=lambda s: now.__setitem__(0, now[0] + s), monotonic=lambda: now[0])
    c.wait_ready(["http://a:8000", "http://b:8000"], "/", timeout_s=30)
    assert now[0] == 2.0


def test_wait_ready_times_out_naming_what_it_saw():
    now = [0.0]
    c = EmbeddedCluster("c1", cli=["sc"], runner=FakeRunner(status_answer()), get=lambda url: 404,
                        sleep=lambda s: now.__setitem__(0, now[0] + s), monotonic=lambda: now[0])
    with pytest.raises(TargetError) as info:
        c.wait_ready(["http://a:8000"], "/x", timeout_s=5)
    assert "http://a:8000 -> 404" in info.value.cause and "cluster status --name c1" in info.value.fix


def test_proxy_urls_and_prometheus_from_status():
    c = EmbeddedCluster("c1", cli=["sc"], runner=FakeRunner(status_answer()))
    assert c.proxy_urls("serve_core", ["workers"]) == ["http://10.77.0.3:8000"]
    assert c.prometheus_url() == "http://10.77.0.1:9391"
    with pytest.raises(TargetError) as info:
        EmbeddedCluster("c1", cli=["sc"], runner=FakeRunner(status_answer({**STATUS, "proxies": []}))).proxy_urls(
            "serve_core", ["workers"])
    assert "deploy the application first" in info.value.fix


def test_snapshot_when_ray_does_not_answer_goes_by_the_processes():
    doc = json.loads(json.dumps(STATUS))
    doc["ray_error"] = "Ray did not answer within 45s"
    for n in doc["nodes"]:
        n["alive"] = False
    snap = snapshot_from_status(doc)
    assert [(n.name, n.alive) for n in snap.nodes] == [("head", True), ("w1", True), ("w2", False)]


def test_prometheus_url_reuses_the_last_status():
    runner = FakeRunner(status_answer())
    c = EmbeddedCluster("c1", cli=["sc"], runner=runner)
    c.status()
    assert c.prometheus_url() == "http://10.77.0.1:9391" and len(runner.calls) == 1
