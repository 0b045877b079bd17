"""The health checker: ``HealthChecker(target, bounds).check(label)`` reads the cluster (its
status, the probe application of chaos.campaign.probe, its processes through chaos.run.resources, its
network namespaces and iptables rules, or its containers) and judges what it read with the pure
checks of chaos.campaign.health. The first check is the baseline the later ones compare counts with.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chaos.campaign.health import (
    FORWARD_COMMENT,
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
from chaos.run.resources import Usage, cluster_processes, sample
from chaos.targets.base import json_object
from chaos.targets.processes import Proc, read_table

PROCESS_SETTLE_S = 30.0  # processes of a deleted probe or a replaced replica take a moment to exit
POLL_S = 3.0

Runner = Callable[[list[str], float], tuple[int | None, str, str]]  # argv, timeout -> code, stdout, stderr


class HealthChecker:
    """Checks one target again and again; the first check is the baseline."""

    def __init__(self, target: Any, bounds: HealthBounds | None = None, backend: str = "serve_core",
                 run: Runner | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, say: Callable[[str], None] = lambda m: None) -> None:
        self.target, self.bounds, self.backend = target, bounds or HealthBounds(), backend
        self.run = run or _run
        self.sleep, self.monotonic, self.say = sleep, monotonic, say
        self.baseline_counts: dict[str, int] | None = None
        self.baseline_network: NetworkState | None = None
        self.previous: dict[int, Usage] = {}

    def check(self, label: str, backend: str | None = None, settle_s: float | None = None) -> HealthReport:
        backend = backend or self.backend
        report = HealthReport(label, time.time())
        t0 = self.monotonic()
        settle = self.bounds.settle_s if settle_s is None else settle_s
        doc = self._settled_status(report, backend, settle)
        t = self._lap(report, "status", t0)
        if doc is not None and self.bounds.probe and not any(f.check == "cluster" for f in report.findings):
            self.say("health: deploying the probe application")
            report.probe, error = self.probe(backend)
            names = {str(n.get("ray_node_id")): str(n.get("name")) for n in doc.get("nodes") or []}
            report.findings += probe_findings(report.probe, error, names)
            doc = self._status_after_probe(doc)
        elif self.bounds.probe:
            report.skipped.append("deploy: not tried on a cluster that is not whole")
        t = self._lap(report, "probe", t)
        self._processes(report, doc, backend, min(PROCESS_SETTLE_S, settle))
        t = self._lap(report, "processes", t)
        self._network(report, doc)
        self._lap(report, "network", t)
        report.took_s = round(self.monotonic() - t0, 3)
        return report

    def _lap(self, report: HealthReport, step: str, since: float) -> float:
        now = self.monotonic()
        report.timings[step] = round(now - since, 3)
        return now

    # -- steps --

    def _settled_status(self, report: HealthReport, backend: str, settle_s: float) -> dict[str, Any] | None:
        """The status once it shows nothing wrong, or the last one after ``settle_s``; its findings."""
        deadline = self.monotonic() + settle_s
        said = False
        while True:
            try:
                doc: dict[str, Any] | None = dict(self.target.status())
                findings = status_findings(doc or {}, backend)
            except Exception as e:  # a target's error names the fix
                doc, findings = None, [Finding("cluster", f"status could not be read: {e}")]
            if not findings or self.monotonic() >= deadline:
                report.findings += findings
                return doc
            if not said:
                said = True
                self.say(f"health: waiting up to {settle_s:.0f}s for the cluster to settle ({findings[0]})")
            self.sleep(POLL_S)

    def _status_after_probe(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The status the processes are counted against: the probe may have started the backend on
        a cluster that served nothing (a controller and a proxy per node, listed only from now)."""
        try:
            return dict(self.target.status())
        except Exception:  # the status before the probe, then; its findings are in the report already
            return doc

    def _processes(self, report: HealthReport, doc: Mapping[str, Any] | None, backend: str, settle_s: float) -> None:
        try:
            procs = self._settled_processes(doc, backend, settle_s)
        except Exception as e:
            report.skipped.append(f"processes, memory, fds: the cluster's processes could not be listed: {e}")
            return
        counts = dict(sorted(Counter(p.role for p in procs).items()))
        report.processes = counts
        if self.baseline_counts is None:
            self.baseline_counts = counts
        expected = expected_counts(doc, backend) if doc is not None else {}
        report.findings += process_findings(self.baseline_counts, counts, expected, self.bounds.extra_processes)
        report.findings += self._stopped(procs) + self._leftover_children()
        usage = sample(procs)
        report.usage = role_figures(usage)
        report.findings += usage_findings(usage, self.previous, self.bounds)
        self.previous = {u.pid: u for u in usage}

    def _settled_processes(self, doc: Mapping[str, Any] | None, backend: str, settle_s: float) -> list[Proc]:
        """The cluster's processes once their counts match (a deleted probe's replica, a replaced
        replica take a moment to exit), or after ``settle_s``."""
        deadline = self.monotonic() + settle_s
        expected = expected_counts(doc, backend) if doc is not None else {}
        said = False
        while True:
            procs = cluster_processes(self.target)
            counts = Counter(p.role for p in procs)
            if self.baseline_counts is None:
                return procs
            found = process_findings(self.baseline_counts, counts, expected, self.bounds.extra_processes)
            if not found:
                return procs
            if self.monotonic() >= deadline:
                return procs
            if not said:
                said = True
                self.say(f"health: waiting up to {settle_s:.0f}s for the processes to settle ({found[0]})")
            self.sleep(1.0)

    def _stopped(self, procs: Sequence[Proc]) -> list[Finding]:
        import psutil

        out = []
        for p in procs:
            try:
                if psutil.Process(p.pid).status() == psutil.STATUS_STOPPED:
                    out.append(Finding("processes", f"{p.role} pid {p.pid} on {p.node} is stopped (SIGSTOP: a "
                                                    "freeze that was never thawed)"))
            except psutil.Error:
                continue
        return out

    def _leftover_children(self) -> list[Finding]:
        """Processes this one started (load generators, fault commands) that outlived their run."""
        import psutil

        out = []
        for r in descendants_of(read_table(), os.getpid()):
            try:
                if psutil.Process(r.pid).status() == psutil.STATUS_ZOMBIE:
                    continue  # exited; its parent has not reaped it yet
            except psutil.Error:
                continue  # gone
            out.append(Finding("processes", f"pid {r.pid} ({r.cmdline[:120] or r.name}), started by this campaign, "
                                            "still runs"))
        return out

    def _network(self, report: HealthReport, doc: Mapping[str, Any] | None) -> None:
        if getattr(self.target, "docker", None) is not None:
            report.findings += self._compose_leftovers(report)
            return
        if doc is None or doc.get("mode") != "netns":
            report.skipped.append("network: a loopback cluster (its faults do not touch the network)")
            return
        now = self._netns_state(doc, report)
        if self.baseline_network is None:
            self.baseline_network = NetworkState(now.namespaces, (), now.forward_rules)
        report.findings += network_findings(self.baseline_network, now)

    def _netns_state(self, doc: Mapping[str, Any], report: HealthReport) -> NetworkState:
        code, out, err = self.run(["ip", "netns", "list"], 20.0)
        namespaces = tuple(line.split()[0] for line in out.splitlines() if line.strip()) if code == 0 else None
        if namespaces is None:
            report.skipped.append(f"network namespaces: `ip netns list` failed: {err.strip() or code}")
        code, out, err = self.run(["iptables", "-w", "5", "-S", "FORWARD"], 20.0)
        rules = sum(1 for line in out.splitlines() if FORWARD_COMMENT in line) if code == 0 else None
        if rules is None:
            report.skipped.append(f"FORWARD rules: `iptables -S` failed: {err.strip() or code}")
        leftovers, expected = [], []
        for n in doc.get("nodes") or []:
            ns = n.get("namespace")
            if not ns:
                continue
            expected.append(str(ns))
            if namespaces is not None and ns not in namespaces:
                continue
            code, out, err = self.run(["ip", "netns", "exec", ns, "iptables", "-w", "5", "-S"], 20.0)
            if code == 0:
                what = iptables_leftovers(out)
                leftovers += [(str(n["name"]), what)] if what else []
            else:
                report.skipped.append(f"iptables in {ns}: {err.strip() or code}")
            code, out, err = self.run(["ip", "netns", "exec", ns, "tc", "qdisc", "show"], 20.0)
            what = qdisc_leftovers(out) if code == 0 else None
            leftovers += [(str(n["name"]), what)] if what else []
        return NetworkState(namespaces, tuple(expected), rules, tuple(leftovers))

    def _compose_leftovers(self, report: HealthReport) -> list[Finding]:
        out: list[Finding] = []
        try:
            containers = list(self.target.containers())
        except Exception as e:
            report.skipped.append(f"containers: could not be listed: {e}")
            return out
        for c in containers:
            if c.status == "paused":
                out.append(Finding("network", f"container {c.name} is paused (a freeze that was never thawed)"))
            if c.node is None:
                continue
            helpers = list(self.target.docker.helpers_of(c))
            if helpers:
                out.append(Finding("network", f"node {c.node}: {len(helpers)} network-fault helper container(s) left "
                                              f"({', '.join(h[:12] for h in helpers)})"))
            if c.running:
                r = self.target.docker.exec(c, ["tc", "qdisc", "show"], 20.0)
                what = qdisc_leftovers(r.stdout) if r.code == 0 else None
                out += [Finding("network", f"node {c.node}: {what}")] if what else []
        return out

    # -- the probe --

    def probe(self, backend: str) -> tuple[dict[str, Any] | None, str]:
        """Run chaos.campaign.probe on the cluster: (its JSON document, "") or (None, why not)."""
        args = ["-m", "chaos.campaign.probe", "--backend", backend, "--timeout", f"{self.bounds.probe_timeout_s:g}"]
        timeout = self.bounds.probe_timeout_s + 60.0
        docker = getattr(self.target, "docker", None)
        if docker is not None:  # compose: in the head container
            head = self.target.nodes().get("head")
            if head is None or not head.running:
                return None, "the head container does not run"
            r = docker.exec(head, ["python", *args], timeout)
            code, out, err = r.code, r.stdout, r.stderr
        else:
            code, out, err = self.run(self.target.command("exec", extra=["--", sys.executable, *args]), timeout)
        doc = json_object(out or "")
        if doc is None:
            why = "timed out" if code is None else (err or out).strip()[-600:] or f"exit {code}"
            return None, why
        return doc, ""


def _run(argv: list[str], timeout_s: float) -> tuple[int | None, str, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "", f"no answer within {timeout_s:.0f}s"
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: no such program"
    return p.returncode, p.stdout, p.stderr
