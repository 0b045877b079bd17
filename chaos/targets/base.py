"""Where an experiment runs: the ``Target`` protocol the runner drives (check the cluster
answers, deploy, give the proxies and Prometheus, inject a planned fault, interrupt faults in
progress), what injecting a fault returns, and what every target shares: reading a status
into the schedule's snapshot and the proxies' URLs, waiting for an application to answer,
the commands that deploy on the cluster, and a redeploy or config change as a fault.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.errors import ChaosError
from chaos.spec.experiment import Application
from chaos.spec.schedule import DeploymentInfo, NodeInfo, PlannedFault, Snapshot

FAULT_TIMEOUT_S = 150.0  # on top of the fault's own duration
DEPLOY_FAULT_TIMEOUT_S = 180.0  # a deploy fault waits for the rollout to finish
RAY_SERVE_PORT = 8000


class TargetError(ChaosError, RuntimeError):
    """The target could not do what the runner asked: what, why, and the fix."""

    def __init__(self, what: str, cause: str, fix: str) -> None:
        super().__init__(what, cause, fix)
        self.what, self.cause, self.fix = what, cause, fix

    def __str__(self) -> str:
        return f"{self.what}: {self.cause}; {self.fix}"


@dataclass
class FaultOutcome:
    """What injecting one fault did. ``output`` is the command's JSON object."""

    ok: bool
    output: dict[str, Any] | None = None
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    argv: list[str] = field(default_factory=list)


class Target(Protocol):
    """What the runner needs of a cluster."""

    description: str

    def check(self) -> Snapshot:
        """Raise TargetError unless the cluster answers; return its snapshot."""
        ...

    def snapshot(self) -> Snapshot: ...

    def deploy(self, app: Application, backend: str) -> dict[str, Any]: ...

    def wait_ready(self, urls: list[str], route: str, timeout_s: float) -> None: ...

    def proxy_urls(self, backend: str, which: list[str]) -> list[str]: ...

    def prometheus_url(self) -> str: ...

    def inject(self, fault: PlannedFault) -> FaultOutcome:
        """Inject and return when the fault is over (a held fault after its duration).
        Failures are returned (ok=False), not raised."""
        ...

    def interrupt(self) -> None:
        """End held faults in progress early (they heal as they end)."""
        ...


def http_status(url: str, timeout_s: float = 5.0) -> int | None:
    """The status of a GET (None: no answer)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout_s) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, ValueError):
        return None


def wait_answering(target: Any, urls: list[str], route: str, timeout_s: float, fix: str) -> None:
    """Until the route answers (not 404, not 5xx) on every proxy in ``urls``, through the
    target's ``get``, ``monotonic`` and ``sleep``; TargetError with ``fix`` past the timeout."""
    deadline = target.monotonic() + timeout_s
    waiting = list(urls)
    last: dict[str, int | None] = {}
    while waiting:
        for url in list(waiting):
            code = last[url] = target.get(url.rstrip("/") + route)
            if code is not None and code < 500 and code != 404:
                waiting.remove(url)
        if not waiting:
            return
        if target.monotonic() >= deadline:
            seen = ", ".join(f"{u} -> {last.get(u) or 'no answer'}" for u in waiting)
            raise TargetError(f"the application does not answer at {route}", f"after {timeout_s:.0f}s: {seen}", fix)
        target.sleep(1.0)


def deploy_command(app: Application, backend: str, python: str = sys.executable) -> list[str]:
    """The driver command that deploys ``app`` with ``backend`` (run through `cluster exec`). Pure."""
    config = app.config_for(backend)
    if config is not None:
        return config_command(config, backend, python, fresh=app.fresh)
    path = app.import_path_for(backend)
    assert path is not None
    argv = [python, "-m", "chaos.targets.deploy_app", "deploy", "--backend", backend, "--name", app.name,
            "--route-prefix", app.route]
    return argv + (["--swap-import"] if app.needs_swap(backend) else []) + [path]


def config_command(config: str, backend: str, python: str = sys.executable, fresh: bool = False) -> list[str]:
    """The driver command that applies a serve config (it also stops the other backend: both
    listen on port 8000). Pure."""
    return [python, "-m", "chaos.targets.deploy_config", "--backend", backend] + (["--fresh"] if fresh else []) + [config]


def snapshot_from_status(doc: dict[str, Any], backend: str = "serve_core") -> Snapshot:
    """The schedule's snapshot from `cluster status --json`. A node is alive when Ray lists it
    alive and its process runs; when Ray does not answer (the GCS is down), by its process
    alone, so that a rollback does not restart nodes that are fine. Pure."""
    nodes = []
    ray_down = bool(doc.get("ray_error"))
    for n in doc.get("nodes") or []:
        process = n.get("process") or {}
        running = process.get("alive", True) is not False
        alive = running if ray_down else bool(n.get("alive")) and running
        nodes.append(NodeInfo(str(n["name"]), str(n.get("role") or "worker"), alive))
    deployments = []
    serving = doc if backend == "serve_core" else (doc.get("ray_serve") or {})
    for app_name, app in sorted((serving.get("applications") or {}).items()):
        for dep_name, dep in sorted((app.get("deployments") or {}).items()):
            per_node = dep.get("replicas_per_node") or {}
            hosts = tuple(node for node, count in sorted(per_node.items()) for _ in range(int(count)))
            deployments.append(DeploymentInfo(app_name, dep_name, hosts))
    return Snapshot(tuple(nodes), tuple(deployments))


def proxy_urls_from_status(doc: dict[str, Any], backend: str, which: list[str]) -> list[str]:
    """URLs of the proxies the load should use, from `cluster status --json`. ``which``
    holds words (all, workers, head) or node names. serve_core's proxies are listed in the
    status; Ray Serve's listen on port 8000 (of loopback, or in netns mode of each node that
    has one: Ray Serve runs a proxy only where it has a replica, and on the head). Pure."""
    nodes = {n["name"]: n for n in doc.get("nodes") or []}

    def wanted(node: str) -> bool:
        role = (nodes.get(node) or {}).get("role")
        return ("all" in which or node in which or ("workers" in which and role == "worker")
                or ("head" in which and role == "head"))

    urls: list[str] = []
    if backend == "serve_core":
        for p in doc.get("proxies") or []:
            node, address = str(p.get("node", "")), str(p.get("url") or p.get("address") or "")
            if not wanted(node) or not address or p.get("state", "RUNNING") not in ("RUNNING", "HEALTHY", ""):
                continue
            host, _, port = address.removeprefix("http://").rpartition(":")
            if host in ("", "0.0.0.0"):
                host = str((nodes.get(node) or {}).get("address") or "127.0.0.1")
            urls.append(f"http://{host}:{port}")
    elif doc.get("mode") == "netns":
        listed = {str(p.get("node")) for p in (doc.get("ray_serve") or {}).get("proxies") or []}
        urls = [f"http://{n['address']}:{RAY_SERVE_PORT}" for name, n in nodes.items()
                if wanted(name) and (not listed or name in listed)]
    else:
        urls = [f"http://127.0.0.1:{RAY_SERVE_PORT}"]
    return sorted(set(urls), key=urls.index)


def json_object(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that is a JSON object (the whole text for pretty JSON)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return dict(json.loads(text))
        except ValueError:
            pass
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return None


def tail(text: str, limit: int = 600) -> str:
    """The end of a command's output, for an error message."""
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def number(v: Any) -> float | None:
    """A JSON number as a float; None for anything else."""
    return float(v) if isinstance(v, int | float) else None


def fmt(v: Any) -> str:
    """A number for a command-line flag: 5 not 5.0."""
    return f"{float(v):g}"


class Deploys:
    """What a target does for the runner's ``redeploy`` and ``deploy`` actions, the same on every
    target: a redeploy is the run's own deployment again, a deploy applies a serve config on the
    cluster (``config_command``) through the target's ``run_on_cluster``."""

    backend: str
    python: str = sys.executable  # the interpreter on the cluster
    _deployed: tuple[Application, str] | None
    wall: Callable[[], float]

    def deploy(self, app: Application, backend: str) -> dict[str, Any]:
        raise NotImplementedError

    def run_on_cluster(self, argv: list[str], timeout_s: float) -> tuple[int | None, str, str, list[str]]:
        """Run ``argv`` on the cluster: exit code (None: timed out), stdout, stderr, and the
        command as the journal should show it."""
        raise NotImplementedError

    def _apply_config(self, config: str) -> FaultOutcome:
        started = self.wall()
        argv = config_command(config, self.backend, python=self.python)
        code, out, err, shown = self.run_on_cluster(argv, DEPLOY_FAULT_TIMEOUT_S)
        ended = self.wall()
        if code != 0:
            cause = "timed out" if code is None else tail(err or out) or f"exit {code}"
            return FaultOutcome(False, error=f"deploying {config} failed: {cause}", argv=shown)
        done = {"fault": "deploy", "target": {}, "started": started, "ended": ended,
                "detail": {"config": config, "output": tail(out, 2000)}}
        return FaultOutcome(True, done, started, ended, argv=shown)

    def _redeploy(self) -> FaultOutcome:
        if self._deployed is None:
            return FaultOutcome(False, error="nothing was deployed in this run")
        try:
            out = self.deploy(*self._deployed)
        except TargetError as e:
            return FaultOutcome(False, error=str(e))
        now = self.wall()
        return FaultOutcome(True, {"fault": "redeploy", "target": {}, "started": now, "ended": now, "detail": out},
                            now, now, argv=out["argv"])
