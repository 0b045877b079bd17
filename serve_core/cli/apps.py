"""`serve-core run | deploy | status | shutdown`: put applications on a cluster and look at them.

Also the config loading that `deploy` and chaos's deploy step share (``load_config``,
``deploy_app_config``). serve_core's API, Ray and the config models are imported where a
command needs them: every other command would otherwise pay about 1.5 s importing them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import yaml

from serve_core.errors import ConfigError
from serve_core.ids import DEPLOYED_CONFIG_KEY

log = logging.getLogger("serve_core.cli")
WILDCARD_HOSTS = ("0.0.0.0", "::")

if TYPE_CHECKING:
    from serve_core import api
    from serve_core.config_file import ApplicationConfig, ServeConfig


def import_app(import_path: str, args: dict[str, Any] | None = None, field: str = "import_path") -> api.Application:
    """``module:attr`` (or ``module.attr``) to an Application; builders get ``args``."""
    from serve_core import api
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


def bound_applications(value: Any) -> Iterator[api.Application]:
    """Every bound application in a graph, the ingress first, depth first (a deployment bound
    in several places comes as often as it is bound)."""
    from serve_core import api
    if isinstance(value, api.Application):
        yield value
        for v in [*value.args, *value.kwargs.values()]:
            yield from bound_applications(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from bound_applications(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from bound_applications(v)


def apply_overrides(app: api.Application, overrides: dict[str, dict[str, Any]], where: str) -> None:
    """Replace options of the named deployments anywhere in the graph."""
    found: set[str] = set()
    for bound in bound_applications(app):
        name = bound.deployment.name
        if name in overrides:
            bound.deployment = bound.deployment.options(**overrides[name])
            found.add(name)
    missing = sorted(set(overrides) - found)
    if missing:
        raise ConfigError(f"{where}.deployments.name", missing[0], "no deployment with this name in the application")


def load_config(path: str) -> ServeConfig:
    """A config file (Ray Serve's format, serve_core's extras allowed), with one warning naming
    the keys it accepts and does not act on."""
    from serve_core.config import parse
    from serve_core.config_file import ServeConfig
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError("config file", path, f"cannot read it: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError("config file", path, f"is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("config file", path, "must be a mapping with an `applications` list")
    cfg = parse(ServeConfig, doc)
    ignored = cfg.ignored()
    if ignored:
        log.warning("%s: accepted and ignored (no meaning in serve_core): %s", path, ", ".join(ignored))
    host = cfg.http_options.host
    if host in WILDCARD_HOSTS:
        log.warning("%s: http_options.host is %s: proxies listen on every interface (Ray Serve's `serve build` writes "
                    "this by default); set 127.0.0.1 to keep them on this machine, or put TLS and a firewall in front",
                    path, host)
    return cfg


def deploy_app_config(cfg: ApplicationConfig, index: int) -> None:
    from serve_core import api
    where = f"applications[{index}]"
    app = import_app(cfg.import_path, cfg.args, f"{where}.import_path")
    apply_overrides(app, {d.name: d.changes() for d in cfg.deployments}, where)
    api.run(app, name=cfg.name, route_prefix=cfg.route_prefix)


def is_config_file(target: str) -> bool:
    return target.endswith((".yaml", ".yml", ".json")) or os.path.isfile(target)


def cmd_run(ns: argparse.Namespace) -> int:
    """``run module:app`` or ``run CONFIG``: deploy, then wait for Ctrl-C (unless --non-blocking)."""
    from serve_core import api, ray_seam
    if is_config_file(ns.import_path):
        cfg = load_config(ns.import_path)
        ray_seam.connect(ns.address)
        deploy_config(cfg)
    else:
        app = import_app(ns.import_path)
        ray_seam.connect(ns.address)
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


def deploy_config(cfg: ServeConfig) -> None:
    """Every application of ``cfg``; the config (as given, defaults left out) is kept in the
    cluster for ``serve-core config``."""
    from serve_core import api, ray_seam
    opts = cfg.effective_http_options()
    api.start(http_options=opts)
    for i, app_cfg in enumerate(cfg.applications):
        deploy_app_config(app_cfg, i)
        where = f"http://{opts.host}:{opts.port}{app_cfg.route_prefix}" if app_cfg.route_prefix else "(no route)"
        print(f"deployed application {app_cfg.name!r} at {where}", flush=True)
    ray_seam.kv_put(DEPLOYED_CONFIG_KEY, yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True),
                                                        sort_keys=False).encode())


def cmd_deploy(ns: argparse.Namespace) -> int:
    from serve_core import ray_seam
    cfg = load_config(ns.config)
    ray_seam.connect(ns.address)
    deploy_config(cfg)
    return 0


def cmd_config(ns: argparse.Namespace) -> int:
    """The config `deploy` (or `run CONFIG`) last applied, as YAML."""
    from serve_core import ray_seam
    ray_seam.connect(ns.address)
    text = ray_seam.kv_get(DEPLOYED_CONFIG_KEY)
    if text is None:
        print("no config deployed: applications deployed from Python (serve.run) or with `serve-core run module:app` "
              "have none; `serve-core status` lists them", file=sys.stderr)
        return 1
    doc = yaml.safe_load(text)
    if ns.name:
        apps = [a for a in doc.get("applications", []) if a.get("name") == ns.name]
        if not apps:
            raise ConfigError("--name", ns.name, "no application of that name in the deployed config; "
                              f"it has {[a.get('name') for a in doc.get('applications', [])]}")
        doc = apps[0]
    print(yaml.safe_dump(doc, sort_keys=False), end="")
    return 0


def cmd_status(ns: argparse.Namespace) -> int:
    from serve_core import api, ray_seam
    ray_seam.connect(ns.address)
    st = api.status()
    doc = {
        "proxies": {n[:12]: f"{p['state']} {p['host']}:{p['port']}" for n, p in st.proxies.items()},
        "applications": {
            name: {
                "status": str(a.status), "route_prefix": a.route_prefix, "message": a.message,
                "deployments": {
                    d: {"status": str(v.status), "replicas": v.replica_states, "target": v.target_replicas,
                        "message": v.message}
                    for d, v in a.deployments.items()
                },
            }
            for name, a in st.applications.items()
        },
    }
    print(json.dumps(doc, indent=2) if ns.json else yaml.safe_dump(doc, sort_keys=False), end="")
    return 0


def cmd_shutdown(ns: argparse.Namespace) -> int:
    from serve_core import api, ray_seam
    ray_seam.connect(ns.address)
    api.shutdown()
    print("serve_core shut down", flush=True)
    return 0


def add_address(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                    help="Ray cluster address (default: RAY_ADDRESS or a new local cluster)")


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("run", help="deploy module:app (or the applications of a config file) and serve it")
    r.add_argument("import_path", metavar="module:app | CONFIG",
                   help="a bound application, or a config file (Ray Serve's format, as `serve build` writes it)")
    r.add_argument("--name", default="default")
    r.add_argument("--route-prefix", default="/")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8000)
    r.add_argument("--non-blocking", action="store_true", help="return once running instead of waiting for Ctrl-C")
    add_address(r)
    r.set_defaults(handler=cmd_run)
    d = sub.add_parser("deploy", help="deploy the applications of a config file (Ray Serve's format)")
    d.add_argument("config")
    add_address(d)
    d.set_defaults(handler=cmd_deploy)
    c = sub.add_parser("config", help="print the config file `deploy` last applied")
    c.add_argument("--name", help="only this application's entry")
    add_address(c)
    c.set_defaults(handler=cmd_config)
    s = sub.add_parser("status", help="applications, deployments, replicas and proxies")
    s.add_argument("--json", action="store_true")
    add_address(s)
    s.set_defaults(handler=cmd_status)
    sh = sub.add_parser("shutdown", help="delete every application and stop serve_core")
    add_address(sh)
    sh.set_defaults(handler=cmd_shutdown)
