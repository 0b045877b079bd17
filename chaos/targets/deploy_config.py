"""``python -m chaos.targets.deploy_config --backend B [--fresh] FILE``: deploy a serve config (run on
the cluster through ``cluster exec``, for an experiment whose application has ``config``). The
other backend is shut down first (both listen on port 8000). With ``--fresh`` (the
application's ``fresh: true``) the config's applications are deleted before the deploy, so the
run starts from the deployments' initial replicas and not from the size an earlier run's
autoscaler left. serve_core deploys with its own config loader; Ray Serve with ``serve run
--non-blocking`` (``serve deploy`` needs the dashboard's REST API, which the embedded cluster
does not run)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import yaml

from chaos.targets.deploy_app import shut_down_the_other


def _app_names(path: str) -> list[str]:
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    return [str(a.get("name", "default")) for a in doc.get("applications") or []]


def _delete(names: list[str], present: set[str], delete: Callable[[str], Any]) -> None:
    for name in names:
        if name in present:
            delete(name)
            print(f"deleted {name!r} (fresh deploy)", flush=True)


def deploy_serve_core(path: str, fresh: bool) -> None:
    import serve_core
    from serve_core import api
    from serve_core.cli import deploy_app_config, load_config

    cfg = load_config(path)
    api.start(http_options=cfg.effective_http_options())
    present = set(serve_core.status().applications) if fresh else set()
    _delete([a.name for a in cfg.applications], present, serve_core.delete)
    for i, app_cfg in enumerate(cfg.applications):
        deploy_app_config(app_cfg, i)
        print(f"deployed application {app_cfg.name!r} at {app_cfg.route_prefix}", flush=True)


def deploy_ray_serve(path: str, fresh: bool) -> None:
    from ray import serve

    present: set[str] = set()
    if fresh:
        try:
            present = set(serve.status().applications)
        except Exception:  # Ray Serve not started yet: nothing to delete
            pass
    _delete(_app_names(path), present, serve.delete)
    subprocess.run(["serve", "run", "--non-blocking", path], check=True)  # no dashboard needed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.targets.deploy_config", description=__doc__)
    p.add_argument("--backend", choices=["serve_core", "ray_serve"], required=True)
    p.add_argument("--fresh", action="store_true", help="delete the config's applications first")
    p.add_argument("config")
    ns = p.parse_args(argv)
    shut_down_the_other(ns.backend)
    (deploy_serve_core if ns.backend == "serve_core" else deploy_ray_serve)(ns.config, ns.fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
