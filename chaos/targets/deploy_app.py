"""``python -m chaos.targets.deploy_app deploy ...``: the small driver a target runs on the
cluster to deploy an application. It imports the application for the backend (rewriting the
module's serve import when one module serves both backends) and deploys it with that
backend's public API, after shutting down the other backend (both listen on port 8000)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import re
import sys
import types
from typing import Any

from chaos.targets.base import RAY_SERVE_PORT

SERVE_IMPORTS = {"serve_core": "import serve_core as serve", "ray_serve": "from ray import serve"}


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
    p = argparse.ArgumentParser(prog="python -m chaos.targets.deploy_app deploy",
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
