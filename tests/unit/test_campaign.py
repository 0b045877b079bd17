"""Campaigns (chaos.campaign.campaign) and the health checks between their runs (chaos.campaign.health): the file
format and its errors, the order of runs and checks, the stop rule and the exit status, the
report, and every pure check against status documents, process counts, usage samples and
network state as the real commands give them."""

import json
import os
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.campaign.campaign import (
    CampaignRun,
    LoadedCampaign,
    RunOutcome,
    load_campaign,
    parse_campaign_text,
    resolve,
    run_campaign,
    verdict_of,
)
from chaos.campaign.health import (
    Finding,
    HealthBounds,
    HealthReport,
    NetworkState,
    descendants_of,
    expected_counts,
    iptables_leftovers,
    network_findings,
    probe_findings,
    process_findings,
    qdisc_leftovers,
    role_figures,
    status_findings,
    usage_findings,
)
from chaos.campaign.probe import proxy_urls
from chaos.campaign.report import render
from chaos.cli import main
from chaos.errors import ExperimentError
from chaos.run.resources import MIB, Usage
from chaos.targets.processes import ProcRow

pytestmark = pytest.mark.unit

HERE = os.path.dirname(__file__)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CAMPAIGNS = os.path.join(REPO, "chaos", "campaigns")
EXPERIMENTS = os.path.join(REPO, "chaos", "experiments")


def campaign_text(**changes):
    doc = {"name": "t", "target": {"kind": "embedded", "name": "lab"},
           "experiments": [os.path.join(EXPERIMENTS, "ci_replica_kill.yaml")]}
    doc.update(changes)
    return json.dumps(doc)  # JSON is YAML


def error_of(text, **kw) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        parse_campaign_text(text, **kw)
    return info.value


# -- the file -----------------------------------------------------------------------------------


def test_the_ready_campaigns_are_valid():
    ci = load_campaign(os.path.join(CAMPAIGNS, "ci.yaml"))
    assert [e.name for e in ci.experiments] == ["ci_replica_kill", "ci_controller_kill", "ci_proxy_kill"]
    assert sum(e.run_s for e in ci.experiments) <= 150  # the CI campaign stays short
    every = load_campaign(os.path.join(CAMPAIGNS, "all_faults.yaml"))
    names = [e.name for e in every.experiments]
    assert {"replica_kills", "controller_kill", "proxy_kill", "worker_node_loss", "network_partition",
            "gcs_kill_head_restart"} <= set(names)
    actions = {f.action for e in every.experiments for f in e.method}
    assert {"kill-replica", "kill-controller", "kill-proxy", "kill-node", "partition", "kill-gcs"} <= actions


def test_the_readme_example_validates():
    import re

    readme = open(os.path.join(REPO, "chaos", "README.md")).read()
    (example,) = re.findall(r"```yml\n(.*?)```", readme, re.S)
    c = parse_campaign_text(example, os.path.join(CAMPAIGNS, "README.yaml"))
    assert [(e.name, e.backend, e.seed) for e in c.experiments] == [("ci_replica_kill", "serve_core", 3),
                                                                    ("ci_proxy_kill", "ray_serve", 5)]
    assert c.campaign.health.max_rss_mib == {"default": 1024, "replica": 512}


def test_the_campaign_target_and_overrides_reach_every_experiment():
    text = campaign_text(backend="ray_serve", experiments=[
        {"path": os.path.join(EXPERIMENTS, "ci_replica_kill.yaml"), "seed": 42, "rate": 80},
        {"path": os.path.join(EXPERIMENTS, "ci_proxy_kill.yaml"), "backend": "serve_core"}])
    c = parse_campaign_text(text)
    a, b = c.experiments
    assert (a.target.name, a.target.workers, a.backend, a.seed, a.load.profile.rate) == ("lab", 2, "ray_serve", 42, 80)
    assert (b.target.name, b.backend, b.seed) == ("lab", "serve_core", 13)
    assert parse_campaign_text(text, target="embedded:other").experiments[0].target.name == "other"
    assert c.target_text == "embedded:lab"


def test_an_experiment_is_a_path_or_a_mapping():
    assert CampaignRun.model_validate("x.yaml").path == "x.yaml"
    assert CampaignRun.model_validate({"path": "x.yaml", "seed": 1}).seed == 1


def test_paths_resolve_next_to_the_campaign_file_then_the_working_directory(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.yaml").write_text("x")
    (tmp_path / "b.yaml").write_text("x")
    assert resolve("a.yaml", str(tmp_path / "c"), str(tmp_path)) == str(tmp_path / "c" / "a.yaml")
    assert resolve("b.yaml", str(tmp_path / "c"), str(tmp_path)) == str(tmp_path / "b.yaml")
    assert resolve("nope.yaml", str(tmp_path / "c"), str(tmp_path)) is None
    assert resolve(str(tmp_path / "b.yaml"), None, "/") == str(tmp_path / "b.yaml")


def test_a_missing_experiment_file_names_the_entry_the_fix_and_the_line():
    text = textwrap.dedent("""\
        name: t
        experiments:
          - ../experiments/ci_replica_kill.yaml
          - ../experiments/nope.yaml
        """)
    e = error_of(text, source=os.path.join(CAMPAIGNS, "x.yaml"))
    assert len(e.problems) == 1
    p = e.problems[0]
    assert p.path == "experiments[1].path" and p.value == "../experiments/nope.yaml" and p.line == 4
    assert "no such file next to the campaign file" in p.fix and "chaos/experiments/" in p.fix


def test_an_experiment_invalid_under_the_overrides_is_named(tmp_path):
    text = campaign_text(experiments=[{"path": os.path.join(EXPERIMENTS, "ci_replica_kill.yaml"), "rate": -3}])
    p = error_of(text).problems[0]
    assert p.path == "experiments[0].rate" and p.value == -3 and "greater than 0" in p.fix
    # A fault on w2 is valid on the experiment's two workers, not on the campaign's one.
    exp = open(os.path.join(EXPERIMENTS, "ci_proxy_kill.yaml")).read().replace("target: w1", "target: w2")
    (tmp_path / "w2.yaml").write_text(exp)
    text = campaign_text(target={"kind": "embedded", "name": "lab", "workers": 1}, experiments=["w2.yaml"])
    e = error_of(text, source=str(tmp_path / "c.yaml"))
    p = e.problems[0]
    assert p.path == "experiments[0].path" and p.value == "w2.yaml"
    assert "invalid with the campaign's overrides" in p.fix and "w2" in p.fix and "w1" in p.fix, p.fix
    parse_campaign_text(text.replace('"workers": 1', '"workers": 2'), source=str(tmp_path / "c.yaml"))


def test_field_errors_name_the_path_the_value_and_the_fix():
    p = error_of(campaign_text(on_failure="halt")).problems[0]
    assert p.path == "on_failure" and p.value == "halt" and "'continue' or 'stop'" in p.fix
    p = error_of(campaign_text(health={"max_rss": 5})).problems[0]
    assert p.path == "health.max_rss" and p.fix.startswith("remove it (did you mean max_rss_mib?); allowed here: settle_s")
    p = error_of(campaign_text(health={"settle_s": -1})).problems[0]
    assert p.path == "health.settle_s" and "Seconds a cluster may take" in p.fix
    p = error_of(campaign_text(experiments=[])).problems[0]
    assert p.path == "experiments" and "at least 1" in p.fix
    p = error_of(campaign_text(target={"kind": "k8s"})).problems[0]
    assert p.path == "target.kind" and p.value == "k8s" and "embedded" in p.fix and "compose" in p.fix
    p = error_of(campaign_text(target={"kind": "embedded", "nmae": "x"})).problems[0]
    assert p.path == "target.nmae" and "allowed here: kind, name, workers, state_root" in p.fix
    p = error_of('{"experiments": ["a.yaml"]}').problems[0]
    assert p.path == "name" and "add it" in p.fix
    assert "fix the syntax" in str(error_of("name: [t"))
    assert "a campaign is a mapping" in str(error_of("- a"))


def test_lines_point_into_the_file():
    text = "name: t\nexperiments:\n  - x.yaml\nhealth:\n  settle_s: -4\n"
    assert error_of(text, cwd=EXPERIMENTS).problems[0].line == 5


def test_cli_validate_prints_the_campaign_and_exits_3_on_a_bad_file(capsys, tmp_path):
    assert main(["campaign", os.path.join(CAMPAIGNS, "ci.yaml"), "--validate", "--target", "embedded:lab"]) == 0
    out = capsys.readouterr().out
    assert "campaign ci: " in out and "target     embedded:lab" in out
    assert "1. ci_replica_kill" in out and "3. ci_proxy_kill" in out and "4 health checks" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nexperiments: [nope.yaml]\n")
    assert main(["campaign", str(bad), "--validate"]) == 3
    assert "experiments[0].path" in capsys.readouterr().err


# -- running (the runs and checks faked: the order, the stop rule, the exit status) -------------


def loaded(n=3, on_failure="continue"):
    c = parse_campaign_text(campaign_text(on_failure=on_failure,
                                          experiments=[os.path.join(EXPERIMENTS, f) for f in
                                                       ("ci_replica_kill.yaml", "ci_controller_kill.yaml",
                                                        "ci_proxy_kill.yaml")][:n]))
    assert isinstance(c, LoadedCampaign)
    return c


class Script:
    """Fake runs and checks that record the order they were called in."""

    def __init__(self, verdicts, unhealthy=(), interrupt_at=None):
        self.verdicts, self.unhealthy, self.interrupt_at = list(verdicts), set(unhealthy), interrupt_at
        self.calls = []

    def run_one(self, exp, root):
        self.calls.append(("run", exp.name))
        verdict = self.verdicts.pop(0)
        run_dir = os.path.join(root, f"{exp.name}-1")
        os.makedirs(run_dir)
        with open(os.path.join(run_dir, "summary.json"), "w") as f:
            json.dump({"sent": 4000, "ok": 3998, "failed": 2}, f)
        report = os.path.join(run_dir, "report.md")
        open(report, "w").close()
        return RunOutcome(verdict, [] if verdict == "passed" else ["whole: availability = 0.99"], run_dir, report,
                          interrupted=self.interrupt_at == exp.name)

    def check(self, label, backend):
        self.calls.append(("check", label))
        h = HealthReport(label, 0.0, took_s=2.0, processes={"replica": 2}, usage={"replica": {
            "count": 2, "max_rss_mib": 99.0, "total_rss_mib": 190.0, "max_fds": 50}})
        if label in self.unhealthy:
            h.findings = [Finding("records", "the proxy on node w2 is FAILED: gone")]
        return h


def run(script, c, tmp_path):
    said = []
    result = run_campaign(c, str(tmp_path), script.run_one, script.check, say=said.append)
    return result, said


def test_a_check_before_the_first_run_and_after_every_one(tmp_path):
    s = Script(["passed"] * 3)
    result, said = run(s, loaded(), tmp_path)
    assert s.calls == [("check", "before the first run"), ("run", "ci_replica_kill"), ("check", "after ci_replica_kill"),
                       ("run", "ci_controller_kill"), ("check", "after ci_controller_kill"),
                       ("run", "ci_proxy_kill"), ("check", "after ci_proxy_kill")]
    assert result.status == 0 and result.doc["verdict"] == "passed"
    assert os.path.dirname(result.directory) == str(tmp_path) and os.path.basename(result.directory).startswith("t-")
    doc = json.loads(open(os.path.join(result.directory, "campaign.json")).read())
    assert [r["verdict"] for r in doc["runs"]] == ["passed"] * 3 and doc["baseline"]["healthy"] is True
    assert doc["runs"][0]["report"] == "runs/ci_replica_kill-1/report.md" and doc["runs"][0]["sent"] == 4000
    report = open(result.report).read()
    assert report.startswith("# Campaign t: PASSED\n") and "3 of 3 runs passed; cluster healthy at every check" in report
    assert "| 1 | ci_replica_kill | serve_core | 3 | passed | 4,000 | 2 |" in report
    assert "[report](runs/ci_replica_kill-1/report.md)" in report
    assert "| replica | 2 / 99 / 50 | 2 / 99 / 50 | 2 / 99 / 50 | 2 / 99 / 50 |" in report


def test_a_finding_fails_the_campaign_and_continues_by_default(tmp_path):
    s = Script(["passed"] * 3, unhealthy={"after ci_controller_kill"})
    result, said = run(s, loaded(), tmp_path)
    assert len([c for c in s.calls if c[0] == "run"]) == 3
    assert result.status == 1 and result.doc["verdict"] == "failed"
    report = open(result.report).read()
    assert "**1 finding(s)** (2 s): records: the proxy on node w2 is FAILED: gone" in report
    assert "findings at 1 of 4 checks" in report
    assert any("records: the proxy on node w2 is FAILED" in line for line in said)


def test_stop_ends_the_campaign_after_a_failed_run(tmp_path):
    s = Script(["passed", "failed", "passed"])
    result, _ = run(s, loaded(on_failure="stop"), tmp_path)
    assert [c for c in s.calls if c[0] == "run"] == [("run", "ci_replica_kill"), ("run", "ci_controller_kill")]
    assert s.calls[-1] == ("check", "after ci_controller_kill")  # the cluster is still looked at
    assert result.status == 1 and "stopped after run 2 (ci_controller_kill): it failed" in result.doc["stopped"]
    assert [r["verdict"] for r in result.doc["runs"]] == ["passed", "failed", "skipped"]
    report = open(result.report).read()
    assert "**Stopped early**" in report and "1 of 3 runs passed (1 not run)" in report
    assert "- 2. ci_controller_kill: whole: availability = 0.99" in report


def test_stop_also_after_a_check_with_findings(tmp_path):
    s = Script(["passed"] * 3, unhealthy={"after ci_replica_kill"})
    result, _ = run(s, loaded(on_failure="stop"), tmp_path)
    assert [c for c in s.calls if c[0] == "run"] == [("run", "ci_replica_kill")]
    assert "the health check found 1 problem(s)" in result.doc["stopped"]


def test_ctrl_c_in_a_run_stops_the_campaign_with_130(tmp_path):
    s = Script(["passed", "aborted", "passed"], interrupt_at="ci_controller_kill")
    result, _ = run(s, loaded(), tmp_path)
    assert [c for c in s.calls if c[0] == "run"] == [("run", "ci_replica_kill"), ("run", "ci_controller_kill")]
    assert result.status == 130 and result.doc["interrupted"] is True
    assert "**Interrupted**" in open(result.report).read()


@settings(max_examples=200, deadline=None)
@given(verdicts=st.lists(st.sampled_from(["passed", "failed", "aborted", "error", "skipped"]), min_size=1, max_size=6),
       healthy=st.lists(st.booleans(), min_size=7, max_size=7), interrupted=st.booleans())
def test_the_campaign_passes_only_when_every_run_passed_and_every_check_was_healthy(verdicts, healthy, interrupted):
    doc = {"baseline": {"healthy": healthy[0]}, "interrupted": interrupted,
           "runs": [{"verdict": v, "health": None if v == "skipped" else {"healthy": h}}
                    for v, h in zip(verdicts, healthy[1:], strict=False)]}
    verdict, status = verdict_of(doc)
    if interrupted:
        assert (verdict, status) == ("interrupted", 130)
    elif all(v == "passed" for v in verdicts) and all(healthy[: len(verdicts) + 1]):
        assert (verdict, status) == ("passed", 0)
    else:
        assert status == 1 and verdict in ("failed", "incomplete")


def test_the_report_of_a_campaign_still_running():
    text = render({"name": "x", "baseline": None, "runs": [{"index": 1, "name": "a", "verdict": "skipped"}]})
    assert text.startswith("# Campaign x: RUNNING") and "| 1 | a |" in text


# -- health: the status ---------------------------------------------------------------------------


def status(**changes):
    """A `serve-core cluster status --json` document of a healthy cluster (its real shape)."""
    doc = {
        "cluster": "lab", "mode": "netns", "healthy": True,
        "nodes": [{"name": n, "role": "head" if n == "head" else "worker", "namespace": f"sc-{n}", "alive": True,
                   "ray_node_id": f"{n}-id", "process": {"pid": 10 + i, "alive": True}}
                  for i, n in enumerate(["head", "w1", "w2"])],
        "proxies": [{"node": n, "state": "HEALTHY", "address": f"10.77.0.{i + 2}:8000"}
                    for i, n in enumerate(["head", "w1", "w2"])],
        "applications": {"default": {"status": "RUNNING", "route_prefix": "/", "deployments": {
            "Work": {"status": "HEALTHY", "replicas": {"RUNNING": 2}, "target": 2,
                     "replicas_per_node": {"w1": 1, "w2": 1}}}}},
    }
    doc.update(changes)
    return doc


def messages(findings):
    return [str(f) for f in findings]


def test_a_healthy_status_has_no_findings():
    assert status_findings(status()) == []
    assert expected_counts(status()) == {"replica": 2, "proxy": 3, "controller": 1}
    assert expected_counts(status(proxies=[], applications={})) == {"replica": 0, "proxy": 0, "controller": 0}
    assert "controller" not in expected_counts(status(serve_error="RayActorError: dead"))
    assert status_findings(status(proxies=[], applications={})) == []  # nothing deployed yet


def test_the_stale_proxy_of_issue_16_is_a_finding():
    doc = status()
    doc["proxies"].append({"node": "5b2a9e01c3d4", "state": "FAILED", "address": ":0",
                           "message": "the actor's node was terminated unexpectedly"})
    assert messages(status_findings(doc)) == [
        "records: a FAILED proxy is listed for node 5b2a9e01c3d4, which is not in the cluster (a stale record of a "
        "node that is gone): the actor's node was terminated unexpectedly"]
    doc = status()
    doc["proxies"][1] = {"node": "w1", "state": "FAILED", "address": ":0", "message": "boom"}
    assert messages(status_findings(doc)) == ["records: the proxy on node w1 is FAILED: boom"]


def test_nodes_down_missing_proxies_and_replicas_in_the_wrong_place():
    doc = status()
    doc["nodes"][2]["alive"] = False
    doc["proxies"] = doc["proxies"][:2] + [{"node": "w2", "state": "HEALTHY", "address": "x"}]
    doc["applications"]["default"]["deployments"]["Work"]["replicas_per_node"] = {"w1": 1, "w2": 1}
    assert messages(status_findings(doc)) == [
        "cluster: node w2 is down",
        "records: a HEALTHY proxy is listed on node w2, which is down",
        "records: 1 replica(s) of default/Work listed on node w2, which is down"]
    doc = status(proxies=status()["proxies"][:2])
    assert messages(status_findings(doc)) == ["records: node w2 has no proxy"]
    doc = status()
    doc["applications"]["default"]["deployments"]["Work"]["replicas_per_node"] = {"w1": 1, "(not placed)": 1,
                                                                                   "9f00aa11bb22": 1}
    assert messages(status_findings(doc)) == [
        "records: 1 replica(s) of default/Work not placed on any node",
        "records: 1 replica(s) of default/Work listed on node 9f00aa11bb22, which is not in the cluster (a stale record)"]


def test_applications_must_run_at_their_target():
    doc = status()
    dep = doc["applications"]["default"]["deployments"]["Work"]
    dep.update(status="UPDATING", replicas={"RUNNING": 1, "STARTING": 1})
    doc["applications"]["default"]["status"] = "DEPLOYING"
    assert messages(status_findings(doc)) == ["applications: application default is DEPLOYING",
                                              "applications: deployment default/Work is UPDATING",
                                              "applications: deployment default/Work runs 1 replica(s), its target is 2"]


def test_ray_or_the_controller_not_answering():
    assert messages(status_findings(status(ray_error="Ray did not answer within 45s"))) == [
        "cluster: Ray does not answer: Ray did not answer within 45s"]
    assert "cluster: the controller does not answer: RayActorError: dead" in messages(
        status_findings(status(serve_error="RayActorError: dead")))


def test_ray_serve_is_read_from_its_own_section():
    doc = status(ray_serve={"proxies": [{"node": "head", "state": "HEALTHY"}], "applications": {
        "default": {"status": "RUNNING", "deployments": {"Work": {"status": "HEALTHY", "replicas": {"RUNNING": 2},
                                                                  "target": None, "replicas_per_node": {"w1": 2}}}}}})
    assert status_findings(doc, "ray_serve") == []
    assert expected_counts(doc, "ray_serve") == {"replica": 2, "proxy": 1, "controller": 1}


# -- health: the probe ----------------------------------------------------------------------------


def test_the_probe_findings():
    ok = {"deployed": True, "deleted": True, "proxies": {"a-id": {"url": "http://10.77.0.2:8000", "status": 200,
                                                                   "ok": True}}}
    assert probe_findings(ok) == []
    failed = {"deployed": False, "deleted": True, "proxies": {},
              "error": "DeploymentFailedError: the application runs but a proxy cannot start: node gone"}
    assert messages(probe_findings(failed)) == [
        "deploy: a new application does not deploy: DeploymentFailedError: the application runs but a proxy cannot "
        "start: node gone"]
    refused = {"deployed": True, "deleted": False, "delete_error": "TimeoutError: x", "proxies": {
        "w1-id": {"url": "http://10.77.0.3:8000", "status": None, "ok": False, "detail": "ConnectionRefusedError"}}}
    assert messages(probe_findings(refused, names={"w1-id": "w1"})) == [
        "deploy: the probe application does not answer through the proxy on node w1 (http://10.77.0.3:8000): no "
        "answer: ConnectionRefusedError",
        "deploy: the probe application campaign-probe could not be deleted: TimeoutError: x"]
    assert messages(probe_findings(None, "timed out")) == ["deploy: the probe application could not be run: timed out"]


def test_proxy_urls_use_the_node_address_for_a_proxy_on_every_interface():
    proxies = {"a": {"host": "127.0.0.1", "port": 8481}, "b": {"host": "0.0.0.0", "port": 8000}, "c": {"host": "", "port": 0}}
    assert proxy_urls(proxies, {"b": "10.77.0.3"}) == {"a": "http://127.0.0.1:8481", "b": "http://10.77.0.3:8000"}


# -- health: processes, memory, open files ---------------------------------------------------------


def test_process_counts():
    base = {"gcs": 1, "raylet": 3, "worker": 3, "controller": 1}
    assert process_findings(base, {**base, "replica": 2, "proxy": 3}, {"replica": 2, "proxy": 3}, {"default": 0}) == []
    found = process_findings(base, {"gcs": 1, "raylet": 4, "worker": 1, "controller": 1, "replica": 3, "proxy": 2},
                             {"replica": 2, "proxy": 3}, {"default": 0})
    assert messages(found) == [
        "processes: 2 proxy process(es) run, the cluster lists 3: 1 missing",
        "processes: 4 raylet process(es) run, there were before the campaign 3: 1 leaked",
        "processes: 3 replica process(es) run, the cluster lists 2: 1 leaked"]  # fewer idle workers: not a finding
    assert messages(process_findings({"worker": 3}, {"worker": 8}, {}, {"default": 0, "worker": 4})) == [
        "processes: 8 worker process(es) run, there were before the campaign 3 (+4 tolerated): 5 leaked"]


@settings(max_examples=200, deadline=None)
@given(base=st.dictionaries(st.sampled_from(["gcs", "raylet", "controller", "redis"]), st.integers(0, 5)),
       delta=st.dictionaries(st.sampled_from(["gcs", "raylet", "controller", "redis"]), st.integers(-5, 5)),
       extra=st.integers(0, 3))
def test_a_role_is_a_finding_exactly_when_it_left_the_tolerated_range(base, delta, extra):
    now = {r: max(0, base.get(r, 0) + d) for r, d in delta.items()}
    now = {**base, **now}
    found = {m.split()[1]: m for m in (f.message for f in process_findings(base, now, {}, {"default": extra}))}
    for role in set(base) | set(now):
        want, have = base.get(role, 0), now.get(role, 0)
        assert (role in found) == (have > want + extra or have < want), (role, want, have, found)


def usage(pid, role, rss_mib, fds, node="w1"):
    return Usage(pid, role, node, int(rss_mib * MIB), fds)


def test_memory_and_open_files_within_bounds_and_growth():
    bounds = HealthBounds(max_rss_mib={"default": 500, "replica": 200}, max_open_fds={"default": 100},
                          max_rss_growth_mib=50, max_fds_growth=10)
    now = [usage(1, "replica", 250, 20), usage(2, "proxy", 300, 150), usage(3, "raylet", 180, 30),
           usage(4, "prometheus", 5000, 500, "host")]
    before = {3: usage(3, "raylet", 100, 15), 9: usage(9, "replica", 10, 10)}
    assert messages(usage_findings(now, before, bounds)) == [
        "fds: proxy pid 2 on w1 has 150 open files, above its bound of 100",
        "memory: raylet pid 3 on w1 grew by 80 MiB since the last check (100 -> 180 MiB), more than 50 MiB",
        "fds: raylet pid 3 on w1 has 15 more open files than at the last check (15 -> 30), more than 10",
        "memory: replica pid 1 on w1 holds 250 MiB, above its bound of 200 MiB"]  # prometheus: the testbed's own
    assert usage_findings([usage(3, "raylet", 180, 30)], {3: usage(3, "worker", 1, 1)}, bounds) == []  # a reused pid


@settings(max_examples=200, deadline=None)
@given(rss=st.integers(1, 4000), fds=st.integers(0, 4000), top_rss=st.integers(1, 4000), top_fds=st.integers(0, 4000))
def test_a_process_is_over_its_bound_exactly_when_it_holds_more(rss, fds, top_rss, top_fds):
    bounds = HealthBounds(max_rss_mib={"default": top_rss}, max_open_fds={"default": top_fds})
    checks = {f.check for f in usage_findings([usage(1, "gcs", rss, fds)], {}, bounds)}
    assert ("memory" in checks) == (rss > top_rss) and ("fds" in checks) == (fds > top_fds)


def test_figures_per_role():
    figures = role_figures([usage(1, "replica", 100, 20), usage(2, "replica", 50, 40), usage(3, "gcs", 60, 90)])
    assert figures == {"gcs": {"count": 1, "max_rss_mib": 60.0, "total_rss_mib": 60.0, "max_fds": 90},
                       "replica": {"count": 2, "max_rss_mib": 100.0, "total_rss_mib": 150.0, "max_fds": 40}}


def test_descendants_of_a_process():
    rows = [ProcRow(10, 1, "python", "chaos"), ProcRow(11, 10, "locust", "locust -f x"),
            ProcRow(12, 11, "locust", "locust worker"), ProcRow(13, 1, "bash", "bash")]
    assert [r.pid for r in descendants_of(rows, 10)] == [11, 12]


# -- health: the network ------------------------------------------------------------------------


def test_iptables_and_qdisc_leftovers_as_the_commands_print_them():
    healed = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"
    cut = healed + "-N SC-FAULT\n-A INPUT -i eth0 -j SC-FAULT\n-A OUTPUT -o eth0 -j SC-FAULT\n-A SC-FAULT -j DROP\n"
    assert iptables_leftovers(healed) is None
    assert iptables_leftovers(cut) == ("iptables chain SC-FAULT still there with 1 rule(s) (a partition or packet loss "
                                       "not healed)")
    assert qdisc_leftovers("qdisc noqueue 0: dev lo root refcnt 2\nqdisc noqueue 0: dev eth0 root refcnt 2\n") is None
    left = qdisc_leftovers("qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 delay 100ms\n")
    assert left is not None and left.startswith("a netem qdisc still there (qdisc netem 8001: dev eth0")


def test_network_findings_against_the_state_before_the_campaign():
    base = NetworkState(("sc-head", "sc-w1", "sc-w2", "other"), (), 1)
    same = NetworkState(("sc-head", "sc-w1", "sc-w2", "other"), ("sc-head", "sc-w1", "sc-w2"), 1)
    assert network_findings(base, same) == []
    worse = NetworkState(("sc-head", "sc-w1", "sc-w9", "other"), ("sc-head", "sc-w1", "sc-w2"), 2,
                         (("w1", "iptables chain SC-FAULT still there with 1 rule(s)"),))
    assert messages(network_findings(base, worse)) == [
        "network: network namespace sc-w2 of the cluster is gone",
        "network: network namespace sc-w9 appeared during the campaign and is still there",
        "network: 2 copies of the FORWARD rule 'serve-core cluster' (before the campaign: 1)",
        "network: node w1: iptables chain SC-FAULT still there with 1 rule(s)"]
    assert network_findings(NetworkState(), NetworkState()) == []  # not readable: nothing claimed


# -- the checker's waiting (a target that settles; a fake clock) ------------------------------------


class SettlingTarget:
    """A target whose status and processes come from scripts, one entry per call (the last repeats)."""

    def __init__(self, statuses, processes):
        self.statuses, self.procs = list(statuses), list(processes)
        self.status_calls = 0

    def status(self):
        self.status_calls += 1
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def processes(self):
        return self.procs.pop(0) if len(self.procs) > 1 else self.procs[0]


class FakeClock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def procs(**counts):
    from chaos.targets.processes import Proc

    return [Proc(10**7 + i, role, "w1") for role, n in counts.items() for i in range(n)]  # no such pids: not sampled


def checker_for(target, clock, commands=None, **bounds):
    """A checker whose commands (ip, iptables, tc) answer from ``commands`` (argv prefix -> stdout)."""
    from chaos.campaign.checker import HealthChecker

    commands = commands or {"ip netns list": "sc-head\nsc-w1\nsc-w2\n"}  # the namespaces of status()

    def run(argv, timeout_s):
        return 0, next((out for prefix, out in commands.items() if " ".join(argv).startswith(prefix)), ""), ""

    return HealthChecker(target, HealthBounds(probe=False, **bounds), run=run, sleep=clock.sleep,
                         monotonic=clock.monotonic)


def test_the_checker_waits_for_the_cluster_to_settle_and_then_has_no_findings():
    starting = status()
    starting["applications"]["default"]["deployments"]["Work"]["replicas"] = {"RUNNING": 1, "STARTING": 1}
    target = SettlingTarget([starting, starting, status()],
                            [procs(replica=2, proxy=3, controller=1, raylet=3)])
    clock = FakeClock()
    report = checker_for(target, clock, settle_s=60).check("after a run")
    assert report.healthy, messages(report.findings)
    assert target.status_calls == 3 and clock.slept == [3.0, 3.0]
    assert report.processes == {"controller": 1, "proxy": 3, "raylet": 3, "replica": 2}
    assert report.skipped == [] and set(report.timings) == {"status", "probe", "processes", "network"}


def test_the_checker_reads_each_nodes_namespace():
    target = SettlingTarget([status()], [procs(replica=2, proxy=3, controller=1, raylet=3)])
    ns = "sc-head\nsc-w1 (id: 1)\nsc-w2 (id: 2)\n"
    healthy = {"ip netns list": ns, "iptables -w 5 -S FORWARD": "-A FORWARD -i scbr0 -o scbr0 -m comment --comment "
                                                                 '"serve-core cluster" -j ACCEPT\n'}
    checker = checker_for(target, FakeClock(), healthy)
    assert checker.check("before").healthy
    cut = {**healthy, "ip netns exec sc-w1 iptables": "-N SC-FAULT\n-A SC-FAULT -j DROP\n",
           "ip netns exec sc-w2 tc qdisc show": "qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 delay 100ms\n"}
    checker.run = checker_for(target, FakeClock(), cut).run
    assert [f.message for f in checker.check("after").findings] == [
        "node w1: iptables chain SC-FAULT still there with 1 rule(s) (a partition or packet loss not healed)",
        "node w2: a netem qdisc still there (qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 delay 100ms): a "
        "delay or loss not healed"]


def test_the_checker_reports_what_did_not_settle_in_time():
    down = status()
    down["nodes"][2]["alive"] = False
    target = SettlingTarget([down], [procs(replica=2, proxy=3, controller=1, raylet=3)])
    clock = FakeClock()
    report = checker_for(target, clock, settle_s=10).check("after a run")
    assert "cluster: node w2 is down" in messages(report.findings)
    assert clock.now == 12.0  # polled every 3 s until the 10 s were over


def test_the_checker_compares_process_counts_with_the_first_check_and_waits_for_a_dying_one():
    target = SettlingTarget([status()], [procs(replica=2, proxy=3, controller=1, raylet=3)])
    clock = FakeClock()
    checker = checker_for(target, clock, settle_s=60)
    assert checker.check("before").healthy
    # A replaced replica still exiting for two looks, then gone: no finding.
    target.procs = [procs(replica=3, proxy=3, controller=1, raylet=3)] * 2 + [procs(replica=2, proxy=3, controller=1,
                                                                                    raylet=3)]
    assert checker.check("after 1").healthy
    # A raylet that never goes: a leak, after the wait.
    target.procs = [procs(replica=2, proxy=3, controller=1, raylet=4)]
    report = checker.check("after 2")
    assert messages(report.findings) == ["processes: 4 raylet process(es) run, there were before the campaign 3: "
                                         "1 leaked"]


def test_processes_are_counted_against_the_status_after_the_probe():
    """On a fresh cluster the probe starts serve_core: the controller and proxies it brings are
    listed only after it (the CI campaign's first check once called them leaked)."""
    fresh = status(proxies=[], applications={})
    target = SettlingTarget([fresh, status()], [procs(replica=2, proxy=3, controller=1, raylet=3)])
    checker = checker_for(target, FakeClock(), settle_s=60)
    checker.bounds = HealthBounds(probe=True, settle_s=60)
    proxies = {f"{n}-id": {"ok": True} for n in ("head", "w1", "w2")}
    checker.probe = lambda backend: ({"deployed": True, "deleted": True, "proxies": proxies}, "")
    report = checker.check("before")
    assert report.healthy, messages(report.findings)
    assert target.status_calls == 2
