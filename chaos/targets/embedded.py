"""The embedded cluster as a target: ``EmbeddedCluster`` drives the cluster of `serve-core
cluster up` through its command line only (``cluster status --json``, ``cluster exec``,
``cluster fault ... --json``), each call a subprocess with a timeout whose failure becomes a
``TargetError`` naming the fix."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from chaos.spec.experiment import HOLD_ACTIONS, Application
from chaos.spec.schedule import PlannedFault, Snapshot
from chaos.targets.base import (
    FAULT_TIMEOUT_S,
    Deploys,
    FaultOutcome,
    TargetError,
    deploy_command,
    fmt,
    http_status,
    json_object,
    number,
    proxy_urls_from_status,
    snapshot_from_status,
    tail,
    wait_answering,
)
from chaos.targets.commands import CommandRunner, Subprocesses

BACKEND_ACTIONS = ("kill-replica", "kill-proxy", "kill-controller")  # act on the serving backend's processes
STATUS_TIMEOUT_S = 90.0


def serve_core_cli() -> list[str]:
    return [sys.executable, "-m", "serve_core.cli"]


class EmbeddedCluster(Deploys):
    """The cluster of `serve-core cluster up --name NAME`, driven by its command line."""

    def __init__(self, name: str = "default", state_root: str | None = None, cli: list[str] | None = None,
                 runner: CommandRunner | None = None, get: Callable[[str], int | None] = http_status,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 backend: str = "serve_core") -> None:
        self.name, self.state_root, self.backend = name, state_root, backend  # backend: whose processes faults hit
        self.cli = cli or serve_core_cli()
        self.runner = runner or Subprocesses()
        self.get, self.sleep, self.monotonic = get, sleep, monotonic
        self.wall = time.time
        self.description = f"embedded:{name}"
        self._deployed: tuple[Application, str] | None = None
        self._last_status: dict[str, Any] | None = None

    # -- commands --

    def command(self, *words: str, extra: list[str] | None = None) -> list[str]:
        """``serve-core cluster WORDS --name NAME [--state-root R] EXTRA``."""
        argv = [*self.cli, "cluster", *words, "--name", self.name]
        if self.state_root:
            argv += ["--state-root", self.state_root]
        return argv + (extra or [])

    def status(self) -> dict[str, Any]:
        r = self.runner.run(self.command("status", extra=["--json"]), STATUS_TIMEOUT_S)
        if r.timed_out:
            raise TargetError(f"cluster {self.name!r} did not answer", f"`cluster status` took over "
                              f"{STATUS_TIMEOUT_S:.0f}s", f"check `serve-core cluster status --name {self.name}`")
        doc = json_object(r.stdout)
        if r.returncode not in (0, 1) or doc is None:
            cause = tail(r.stderr or r.stdout).removeprefix("error: ") or f"exit {r.returncode}"
            fix = "pass --target embedded:NAME for another cluster"
            if "cluster up" not in cause:
                fix = f"bring it up with `serve-core cluster up --name {self.name}`, or {fix}"
            raise TargetError(f"cannot reach cluster {self.name!r}", cause, fix)
        self._last_status = doc
        return doc

    def check(self) -> Snapshot:
        doc = self.status()
        if doc.get("ray_error"):
            raise TargetError(f"cluster {self.name!r} is up but Ray does not answer", str(doc["ray_error"]),
                              f"check the head with `serve-core cluster status --name {self.name}`; restart it with "
                              f"`serve-core cluster fault restart-node --name {self.name} --node head`")
        snap = snapshot_from_status(doc)
        dead = [n.name for n in snap.nodes if not n.alive]
        if dead:
            raise TargetError(f"cluster {self.name!r} is not whole", f"node(s) {', '.join(dead)} are down",
                              f"restart them with `serve-core cluster fault restart-node --name {self.name} --node "
                              f"{dead[0]}` before the experiment")
        return snap

    def snapshot(self) -> Snapshot:
        return snapshot_from_status(self.status(), self.backend)

    def deploy(self, app: Application, backend: str) -> dict[str, Any]:
        argv = self.command("exec", extra=["--", *deploy_command(app, backend)])
        r = self.runner.run(argv, app.ready_timeout_s)
        if r.returncode != 0:
            cause = "timed out" if r.timed_out else tail(r.stderr or r.stdout) or f"exit {r.returncode}"
            raise TargetError(f"deploying {app.deploys(backend)} with {backend} failed", cause,
                              "run the same command by hand to see why: " + " ".join(argv))
        self._deployed, self.backend = (app, backend), backend
        return {"argv": argv, "output": tail(r.stdout, 2000), "took_s": r.took_s}

    def wait_ready(self, urls: list[str], route: str, timeout_s: float) -> None:
        wait_answering(self, urls, route, timeout_s,
                       f"check `serve-core cluster status --name {self.name}` for its replicas and proxies")

    def proxy_urls(self, backend: str, which: list[str]) -> list[str]:
        doc = self.status()
        urls = proxy_urls_from_status(doc, backend, which)
        if not urls:
            raise TargetError(f"no proxy for {backend} on {', '.join(which)}", "the cluster reports none there",
                              "deploy the application first, or choose other load.proxies")
        return urls

    def prometheus_url(self) -> str:
        doc = self._last_status or self.status()  # the address does not change while the cluster is up
        url = (doc.get("prometheus") or {}).get("url")
        if not url:
            raise TargetError(f"cluster {self.name!r} reports no Prometheus", "status has no prometheus.url",
                              "bring the cluster down and up again")
        return str(url)

    def processes(self) -> list[Any]:
        """Every process of the cluster on this machine (chaos.targets.processes.Proc); the nodes' namespaces and
        the state directory come from the last status (they do not change while the cluster is up)."""
        from chaos.targets.processes import embedded_processes

        return embedded_processes(self._last_status or self.status())

    def add_scrape_targets(self, endpoints: list[str]) -> None:
        """Have the cluster's Prometheus scrape the load generator (host:port each)."""
        doc = self._last_status or self.status()
        path = (doc.get("prometheus") or {}).get("load_targets_file")
        if path and endpoints:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                json.dump([{"targets": list(endpoints), "labels": {"component": "loadgen"}}], f)
            os.replace(tmp, path)

    def inject(self, fault: PlannedFault) -> FaultOutcome:
        if fault.action == "redeploy":
            return self._redeploy()
        if fault.action == "deploy":
            return self._apply_config(str(fault.args["config"]))
        argv = self.command("fault", fault.action, extra=["--json", *fault_args(fault, self.backend)])
        r = self.runner.run(argv, FAULT_TIMEOUT_S + fault.expected_s, interruptible=fault.action in HOLD_ACTIONS)
        doc = json_object(r.stdout)
        if r.returncode == 0 and doc is not None:
            return FaultOutcome(True, doc, number(doc.get("started")), number(doc.get("ended")), argv=argv)
        if r.timed_out:
            error = f"`{fault.action}` did not finish within {FAULT_TIMEOUT_S + fault.expected_s:.0f}s"
        else:
            error = tail(r.stderr) or tail(r.stdout) or f"exit {r.returncode}"
        return FaultOutcome(False, doc, error=error, argv=argv)

    def interrupt(self) -> None:
        self.runner.interrupt()

    def run_on_cluster(self, argv: list[str], timeout_s: float) -> tuple[int | None, str, str, list[str]]:
        shown = self.command("exec", extra=["--", *argv])
        r = self.runner.run(shown, timeout_s)
        return r.returncode, r.stdout, r.stderr, shown


def fault_args(fault: PlannedFault, backend: str = "serve_core") -> list[str]:
    """The flags of `serve-core cluster fault ACTION` for a planned fault. Pure."""
    a = fault.args
    out: list[str] = ["--backend", backend] if fault.action in BACKEND_ACTIONS else []
    if fault.action == "kill-replica":
        for flag, value in (("--deployment", fault.deployment), ("--app", fault.app), ("--node", fault.node)):
            if value:
                out += [flag, value]
        if fault.seed is not None:
            out += ["--seed", str(fault.seed)]
        return out
    if fault.node and fault.action not in ("kill-controller", "kill-gcs"):
        out += ["--node", fault.node]
    if fault.action == "kill-gcs":
        out += ["--down-for", fmt(a.get("down_for_s", 5.0))]
    if fault.action == "netem":
        for flag, key in (("--delay-ms", "delay_ms"), ("--jitter-ms", "jitter_ms"), ("--loss-pct", "loss_pct")):
            if a.get(key):
                out += [flag, fmt(a[key])]
    if fault.action == "partition" and a.get("mode") == "freeze":
        out += ["--freeze"]
    if fault.action == "cpu-burn" and a.get("cores"):
        out += ["--cores", str(a["cores"])]
    if fault.action in HOLD_ACTIONS and fault.duration_s:
        out += ["--for", fmt(fault.duration_s)]
    return out
