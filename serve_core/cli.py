"""``serve-core``: run, deploy, status and shutdown from the command line."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from typing import Any

import yaml

from serve_core import api, cluster
from serve_core.config import ApplicationConfig, ServeConfig, parse
from serve_core.errors import ConfigError, ServeCoreError
from serve_core.local_cluster.commands import add_cluster_commands


def import_app(import_path: str, args: dict[str, Any] | None = None, field: str = "import_path") -> api.Application:
    """``module:attr`` (or ``module.attr``) to an Application; builders get ``args``."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, sep, attr = import_path.partition(":")
    if not sep:
        module_name, _, attr = import_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(field, import_path, f"cannot import module {module_name!r}: {e}") from None
    if not hasattr(module, attr):
        raise ConfigError(field, import_path, f"module {module_name!r} has no attribute {attr!r}")
    target = getattr(module, attr)
    if isinstance(target, api.Deployment):
        raise ConfigError(field, import_path, "this is a deployment; point at `app = X.bind()` instead")
    if not isinstance(target, api.Application) and callable(target):
        target = target(args or {})
    if not isinstance(target, api.Application):
        raise ConfigError(field, import_path, f"expected a bound application, got {type(target).__name__}")
    return target


def apply_overrides(app: api.Application, overrides: dict[str, dict[str, Any]], where: str) -> None:
    """Replace options of the named deployments anywhere in the graph."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, api.Application):
            name = value.deployment.name
            if name in overrides:
                value.deployment = value.deployment.options(**overrides[name])
                found.add(name)
            for v in list(value.args) + list(value.kwargs.values()):
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(app)
    missing = sorted(set(overrides) - found)
    if missing:
        raise ConfigError(f"{where}.deployments.name", missing[0], "no deployment with this name in the application")


def load_config(path: str) -> ServeConfig:
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError("config file", path, f"cannot read it: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError("config file", path, f"is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("config file", path, "must be a mapping with an `applications` list")
    return parse(ServeConfig, doc)


def deploy_app_config(cfg: ApplicationConfig, index: int) -> None:
    where = f"applications[{index}]"
    app = import_app(cfg.import_path, cfg.args, f"{where}.import_path")
    apply_overrides(app, {d.name: d.changes() for d in cfg.deployments}, where)
    api.run(app, name=cfg.name, route_prefix=cfg.route_prefix)


def cmd_run(ns: argparse.Namespace) -> int:
    app = import_app(ns.import_path)
    cluster.connect(ns.address)
    api.start(http_options={"host": ns.host, "port": ns.port})
    api.run(app, name=ns.name, route_prefix=ns.route_prefix)
    print(f"application {ns.name!r} is running at http://{ns.host}:{ns.port}{ns.route_prefix or ''}", flush=True)
    if ns.non_blocking:
        return 0
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("shutting down", flush=True)
        api.shutdown()
    return 0


def cmd_deploy(ns: argparse.Namespace) -> int:
    cfg = load_config(ns.config)
    cluster.connect(ns.address)
    api.start(http_options=cfg.http_options)
    for i, app_cfg in enumerate(cfg.applications):
        deploy_app_config(app_cfg, i)
        print(f"deployed application {app_cfg.name!r} at {app_cfg.route_prefix}", flush=True)
    return 0


def cmd_status(ns: argparse.Namespace) -> int:
    cluster.connect(ns.address)
    st = api.status()
    doc = {
        "proxies": {n[:12]: f"{p['state']} {p['host']}:{p['port']}" for n, p in st.proxies.items()},
        "applications": {
            name: {
                "status": a.status, "route_prefix": a.route_prefix, "message": a.message,
                "deployments": {
                    d: {"status": v.status, "replicas": v.replica_states, "target": v.target_replicas, "message": v.message}
                    for d, v in a.deployments.items()
                },
            }
            for name, a in st.applications.items()
        },
    }
    print(json.dumps(doc, indent=2) if ns.json else yaml.safe_dump(doc, sort_keys=False), end="")
    return 0


def cmd_shutdown(ns: argparse.Namespace) -> int:
    cluster.connect(ns.address)
    api.shutdown()
    print("serve_core shut down", flush=True)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serve-core", description="A Ray Serve-compatible model server.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster address (default: RAY_ADDRESS or a new local cluster)")

    r = sub.add_parser("run", help="deploy module:app and serve it")
    r.add_argument("import_path")
    r.add_argument("--name", default="default")
    r.add_argument("--route-prefix", default="/")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8000)
    r.add_argument("--non-blocking", action="store_true", help="return once running instead of waiting for Ctrl-C")
    common(r)
    d = sub.add_parser("deploy", help="deploy the applications of a YAML config")
    d.add_argument("config")
    common(d)
    s = sub.add_parser("status", help="applications, deployments, replicas and proxies")
    s.add_argument("--json", action="store_true")
    common(s)
    sh = sub.add_parser("shutdown", help="delete every application and stop serve_core")
    common(sh)
    add_cluster_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"run": cmd_run, "deploy": cmd_deploy, "status": cmd_status, "shutdown": cmd_shutdown}
    try:
        return (getattr(ns, "handler", None) or handlers[ns.command])(ns)
    except ServeCoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
