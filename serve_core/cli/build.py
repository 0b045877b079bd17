"""`serve-core build module:app ... -o FILE`: a config file for applications, in Ray Serve's
format, that both ``serve-core deploy`` and Ray Serve's ``serve deploy`` load.

As Ray Serve's ``serve build`` does: applications are named ``app1``, ``app2``, ... (one
application is served at ``/``, several at ``/app1``, ``/app2``, ...), and each deployment
of each graph is listed with the options its code set. serve_core's own options
(``idempotent``, the autoscaler's ``panic_*``) are left out, so that Ray Serve loads the file;
they stay in effect from the code unless the file replaces the option they belong to (a
warning names them). ``max_surge_fraction`` is written as Ray Serve's ``max_surge_percent``.
Proxies listen on 127.0.0.1 (Ray Serve writes 0.0.0.0): edit ``http_options.host`` to expose.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import yaml

from serve_core.cli.apps import bound_applications, import_app

log = logging.getLogger("serve_core.cli")
HEADER = "# Written by `serve-core build`; `serve-core deploy` and Ray Serve's `serve deploy` load it.\n"
# Options both serve_core and Ray Serve know, in the order Ray Serve's `serve build` writes them.
SHARED_OPTIONS = ("num_replicas", "max_ongoing_requests", "max_queued_requests", "backpressure_config", "user_config",
                  "autoscaling_config", "graceful_shutdown_wait_loop_s", "graceful_shutdown_timeout_s",
                  "health_check_period_s", "health_check_timeout_s", "ray_actor_options", "max_replicas_per_node")
SERVE_CORE_ONLY = ("idempotent",)
SERVE_CORE_ONLY_AUTOSCALING = ("panic_threshold", "panic_window_s")


def deployments_of(app: Any) -> list[Any]:
    """Every deployment of an application graph, ingress first, each once."""
    found: dict[str, Any] = {}
    for bound in bound_applications(app):
        found.setdefault(bound.deployment.name, bound.deployment)
    return list(found.values())


def deployment_entry(dep: Any, where: str) -> dict[str, Any]:
    opts = dep._options
    set_ = opts.model_dump(mode="json", exclude_unset=True)
    entry: dict[str, Any] = {"name": dep.name}
    for key in SHARED_OPTIONS:
        if set_.get(key) is not None:
            entry[key] = set_[key]
    auto = entry.get("autoscaling_config")
    left_out = [k for k in SERVE_CORE_ONLY if k in set_]
    if isinstance(auto, dict):
        auto_set = opts.autoscaling_config.model_dump(mode="json", exclude_unset=True)
        left_out += [f"autoscaling_config.{k}" for k in SERVE_CORE_ONLY_AUTOSCALING if k in auto_set]
        entry["autoscaling_config"] = {k: v for k, v in auto_set.items() if k not in SERVE_CORE_ONLY_AUTOSCALING}
    if "max_surge_fraction" in set_:
        entry["max_surge_percent"] = round(set_["max_surge_fraction"] * 100, 6)
    if left_out:
        log.warning("%s: serve_core's own %s left out (Ray Serve would refuse them); the code's values apply",
                    where, ", ".join(left_out))
    return entry


def build(import_paths: list[str], host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """The config document for ``import_paths`` (each ``module:app``)."""
    apps = []
    for i, path in enumerate(import_paths, 1):
        app = import_app(path, field=f"import_path #{i}")
        name = f"app{i}"
        apps.append({
            "name": name, "route_prefix": "/" if len(import_paths) == 1 else f"/{name}", "import_path": path,
            "runtime_env": {},
            "deployments": [deployment_entry(d, f"{name}.{d.name}") for d in deployments_of(app)],
        })
    return {"proxy_location": "EveryNode", "http_options": {"host": host, "port": port}, "applications": apps}


def cmd_build(ns: argparse.Namespace) -> int:
    text = HEADER + "\n" + yaml.safe_dump(build(ns.import_paths, ns.host, ns.port), sort_keys=False)
    if ns.output in (None, "-"):
        sys.stdout.write(text)
    else:
        with open(ns.output, "w") as f:
            f.write(text)
        print(f"wrote {ns.output}", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    b = sub.add_parser("build", help="write a config file (Ray Serve's format) for module:app ...")
    b.add_argument("import_paths", nargs="+", metavar="module:app")
    b.add_argument("-o", "--output", help="file to write (default: standard output)")
    b.add_argument("--host", default="127.0.0.1", help="http_options.host to write (default: 127.0.0.1)")
    b.add_argument("--port", type=int, default=8000, help="http_options.port to write (default: 8000)")
    b.set_defaults(handler=cmd_build)
