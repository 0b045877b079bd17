"""Where an experiment runs, and how faults get there.

``Target`` is the protocol the runner drives: check the cluster is reachable, deploy,
give the proxies and Prometheus, inject a planned fault, interrupt faults in progress.
``EmbeddedCluster`` drives the cluster of `serve-core cluster up` through its command line
only (``cluster status --json``, ``cluster exec``, ``cluster fault ... --json``), each call
a subprocess with a timeout whose failure becomes a ``TargetError`` naming the fix.

``python -m chaos.targets deploy ...`` is the small driver ``deploy`` runs on the cluster:
it imports the application for the backend (rewriting the module's serve import when one
module serves both backends) and deploys it with that backend's public API.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.errors import ChaosError
from chaos.experiment import HOLD_ACTIONS, Application, ComposeTarget, EmbeddedTarget
from chaos.schedule import DeploymentInfo, NodeInfo, PlannedFault, Snapshot

BACKEND_ACTIONS = ("kill-replica", "kill-proxy", "kill-controller")  # act on the serving backend's processes
FAULT_TIMEOUT_S = 150.0  # on top of the fault's own duration
STATUS_TIMEOUT_S = 90.0
DEPLOY_FAULT_TIMEOUT_S = 180.0  # a deploy fault waits for the rollout to finish
RAY_SERVE_PORT = 8000
SERVE_IMPORTS = {"serve_core": "import serve_core as serve", "ray_serve": "from ray import serve"}


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


# -- running commands ---------------------------------------------------------------------------


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int | None  # None: timed out
    stdout: str
    stderr: str
    took_s: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class CommandRunner(Protocol):
    def run(self, argv: list[str], timeout_s: float, interruptible: bool = False) -> CommandResult: ...

    def interrupt(self) -> None: ...


class Subprocesses:
    """Runs commands in sessions of their own (so Ctrl-C reaches only the runner, which then
    ends held faults in order). ``interrupt`` sends SIGINT to the interruptible commands
    it started: a partition or netem command heals as it exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interruptible: set[subprocess.Popen[str]] = set()

    def run(self, argv: list[str], timeout_s: float, interruptible: bool = False) -> CommandResult:
        t = time.monotonic()
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
        except FileNotFoundError:
            return CommandResult(argv, 127, "", f"{argv[0]}: no such program", time.monotonic() - t)
        if interruptible:
            with self._lock:
                self._interruptible.add(p)
        try:
            out, err = p.communicate(timeout=timeout_s)
            return CommandResult(argv, p.returncode, out, err, time.monotonic() - t)
        except subprocess.TimeoutExpired:
            out, err = _end(p)
            return CommandResult(argv, None, out, err, time.monotonic() - t)
        finally:
            with self._lock:
                self._interruptible.discard(p)

    def interrupt(self) -> None:
        with self._lock:
            running = list(self._interruptible)
        for p in running:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass


def _end(p: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGINT (so a held fault heals), then SIGKILL; the output so far."""
    for sig, wait_s in ((signal.SIGINT, 20.0), (signal.SIGKILL, 5.0)):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            break
        try:
            return p.communicate(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return "", ""


def http_status(url: str, timeout_s: float = 5.0) -> int | None:
    """The status of a GET (None: no answer)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout_s) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, ValueError):
        return None


# -- the embedded cluster -----------------------------------------------------------------------


def serve_core_cli() -> list[str]:
    return [sys.executable, "-m", "serve_core.cli"]


class EmbeddedCluster:
    """The cluster of `serve-core cluster up --name NAME`, driven by its command line."""

    def __init__(self, name: str = "default", state_root: str | None = None, cli: list[str] | None = None,
                 runner: CommandRunner | None = None, get: Callable[[str], int | None] = http_status,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 backend: str = "serve_core") -> None:
        self.name, self.state_root, self.backend = name, state_root, backend  # backend: whose processes faults hit
        self.cli = cli or serve_core_cli()
        self.runner = runner or Subprocesses()
        self.get, self.sleep, self.monotonic = get, sleep, monotonic
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
            cause = _tail(r.stderr or r.stdout).removeprefix("error: ") or f"exit {r.returncode}"
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
            cause = "timed out" if r.timed_out else _tail(r.stderr or r.stdout) or f"exit {r.returncode}"
            raise TargetError(f"deploying {app.deploys(backend)} with {backend} failed", cause,
                              "run the same command by hand to see why: " + " ".join(argv))
        self._deployed, self.backend = (app, backend), backend
        return {"argv": argv, "output": _tail(r.stdout, 2000), "took_s": r.took_s}

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
        """Every process of the cluster on this machine (chaos.resources.Proc); the nodes' namespaces and
        the state directory come from the last status (they do not change while the cluster is up)."""
        from chaos.resources import embedded_processes

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
            return FaultOutcome(True, doc, _num(doc.get("started")), _num(doc.get("ended")), argv=argv)
        if r.timed_out:
            error = f"`{fault.action}` did not finish within {FAULT_TIMEOUT_S + fault.expected_s:.0f}s"
        else:
            error = _tail(r.stderr) or _tail(r.stdout) or f"exit {r.returncode}"
        return FaultOutcome(False, doc, error=error, argv=argv)

    def interrupt(self) -> None:
        self.runner.interrupt()

    def _apply_config(self, config: str) -> FaultOutcome:
        started = time.time()
        argv = self.command("exec", extra=["--", *config_command(config, self.backend)])
        r = self.runner.run(argv, DEPLOY_FAULT_TIMEOUT_S)
        ended = time.time()
        if r.returncode != 0:
            cause = "timed out" if r.timed_out else _tail(r.stderr or r.stdout) or f"exit {r.returncode}"
            return FaultOutcome(False, error=f"deploying {config} failed: {cause}", argv=argv)
        return FaultOutcome(True, {"fault": "deploy", "target": {}, "started": started, "ended": ended,
                                   "detail": {"config": config, "output": _tail(r.stdout, 2000)}}, started, ended, argv=argv)

    def _redeploy(self) -> FaultOutcome:
        if self._deployed is None:
            return FaultOutcome(False, error="nothing was deployed in this run")
        try:
            out = self.deploy(*self._deployed)
        except TargetError as e:
            return FaultOutcome(False, error=str(e))
        now = time.time()
        return FaultOutcome(True, {"fault": "redeploy", "target": {}, "started": now, "ended": now, "detail": out},
                            now, now, argv=out["argv"])


def make_target(spec: EmbeddedTarget | ComposeTarget, backend: str = "serve_core") -> Target:
    if isinstance(spec, EmbeddedTarget):
        return EmbeddedCluster(spec.name, spec.state_root, backend=backend)
    from chaos.compose_target import ComposeCluster  # it imports this module

    return ComposeCluster(spec.project, backend=backend)


# -- pure helpers -------------------------------------------------------------------------------


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
        out += ["--down-for", _fmt(a.get("down_for_s", 5.0))]
    if fault.action == "netem":
        for flag, key in (("--delay-ms", "delay_ms"), ("--jitter-ms", "jitter_ms"), ("--loss-pct", "loss_pct")):
            if a.get(key):
                out += [flag, _fmt(a[key])]
    if fault.action == "partition" and a.get("mode") == "freeze":
        out += ["--freeze"]
    if fault.action == "cpu-burn" and a.get("cores"):
        out += ["--cores", str(a["cores"])]
    if fault.action in HOLD_ACTIONS and fault.duration_s:
        out += ["--for", _fmt(fault.duration_s)]
    return out


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
    argv = [python, "-m", "chaos.targets", "deploy", "--backend", backend, "--name", app.name,
            "--route-prefix", app.route]
    return argv + (["--swap-import"] if app.needs_swap(backend) else []) + [path]


def config_command(config: str, backend: str, python: str = sys.executable, fresh: bool = False) -> list[str]:
    """The driver command that applies a serve config (it also stops the other backend: both
    listen on port 8000). Pure."""
    return [python, "-m", "chaos.deploy_config", "--backend", backend] + (["--fresh"] if fresh else []) + [config]


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


def _tail(text: str, limit: int = 600) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) else None


def _fmt(v: Any) -> str:
    return f"{float(v):g}"


# -- the deploy driver (runs on the cluster) ----------------------------------------------------


def swap_serve_import(source: str, backend: str) -> str:
    """``source`` with its serve import line rewritten for ``backend``; raises ValueError
    when the module imports neither form. Pure."""
    want = SERVE_IMPORTS[backend]
    other = next(v for k, v in SERVE_IMPORTS.items() if k != backend)
    pattern = re.compile(rf"^{re.escape(other)}[ \t]*(#.*)?$", re.MULTILINE)
    if re.search(rf"^{re.escape(want)}[ \t]*(#.*)?$", source, re.MULTILINE):
        return source
    if not pattern.search(source):
        raise ValueError(f"the module imports serve neither as `{want}` nor as `{other}`: give "
                         "application.import_paths per backend, or set swap_import: false")
    return pattern.sub(want, source)


def import_for_backend(import_path: str, backend: str, swap: bool) -> Any:
    """The application object at ``module:attr``, its module's serve import rewritten for
    ``backend`` when ``swap``."""
    module_name, _, attr = import_path.partition(":")
    if swap:
        spec = importlib.util.find_spec(module_name)
        if spec is None or not spec.origin:
            raise ValueError(f"cannot find module {module_name}")
        with open(spec.origin) as f:
            source = f.read()
        swapped = swap_serve_import(source, backend)
        if swapped == source:
            module: Any = importlib.import_module(module_name)
        else:  # a module of its own, pickled by value: replicas cannot import it
            module = types.ModuleType(f"chaos_swapped_{backend}_{module_name.replace('.', '_')}")
            module.__file__ = spec.origin
            module.__package__ = module_name.rpartition(".")[0]  # its relative imports still resolve
            sys.modules[module.__name__] = module
            exec(compile(swapped, spec.origin, "exec"), module.__dict__)
            _pickle_by_value(module)
    else:
        module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _pickle_by_value(module: types.ModuleType) -> None:
    for name in ("cloudpickle", "ray.cloudpickle"):
        try:
            importlib.import_module(name).register_pickle_by_value(module)
        except (ImportError, AttributeError):
            continue


def shut_down_the_other(backend: str) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address="auto", logging_level=logging.ERROR)
    names = {a.get("Name") for a in ray._private.state.actors().values() if a.get("State") == "ALIVE"}
    if backend == "serve_core" and "SERVE_CONTROLLER_ACTOR" in names:
        from ray import serve as ray_serve

        ray_serve.shutdown()
        print("shut down Ray Serve", flush=True)
    elif backend == "ray_serve" and "SERVE_CORE_CONTROLLER" in names:
        import serve_core

        serve_core.shutdown()
        print("shut down serve_core", flush=True)


def deploy_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.targets deploy",
                                description="Deploy an application with serve_core or Ray Serve (run on the cluster).")
    p.add_argument("command", choices=["deploy"])
    p.add_argument("--backend", choices=sorted(SERVE_IMPORTS), required=True)
    p.add_argument("--name", default="default")
    p.add_argument("--route-prefix", default="/")
    p.add_argument("--swap-import", action="store_true")
    p.add_argument("import_path")
    ns = p.parse_args(argv)
    app = import_for_backend(ns.import_path, ns.backend, ns.swap_import)
    shut_down_the_other(ns.backend)  # both listen on port 8000 of every node
    if ns.backend == "serve_core":
        import serve_core as serve

        serve.start(http_options={"host": "127.0.0.1", "port": 8000})
    else:
        from ray import serve  # type: ignore[no-redef]

        # Ray Serve has one proxy host for every node: a name each node resolves to its own address
        # (compose: serve-node), or every interface of the node's namespace.
        host = os.environ.get("SERVE_CORE_RAY_SERVE_HOST") or "0.0.0.0"
        serve.start(http_options={"host": host, "port": RAY_SERVE_PORT, "location": "EveryNode"})
    serve.run(app, name=ns.name, route_prefix=ns.route_prefix)
    print(f"deployed {ns.import_path} as {ns.name!r} at {ns.route_prefix} with {ns.backend}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(deploy_main())
