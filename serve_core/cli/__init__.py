"""``serve-core``: the command line. One module per command group:

- ``apps``: run, deploy, config, status, shutdown (applications on a cluster);
- ``build``: a config file for applications, in Ray Serve's format;
- ``score``: a dataset through a running deployment.

Other packages add command groups through the ``serve_core.cli`` entry point group
(``[project.entry-points."serve_core.cli"]`` in pyproject.toml): the testbed registers
``cluster`` (embedded_cluster), ``simulate`` (tune), and ``chaos``, ``load`` and ``tune``,
which hand their arguments to ``python -m chaos|loadgen|tune`` (``passthrough``), so
serve_core never imports the testbed. Each entry point names a function taking argparse's subparsers object; the
commands it adds set ``handler`` (a function of the parsed namespace returning the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from importlib import metadata

from serve_core.cli import apps, build, score
from serve_core.cli.apps import apply_overrides, deploy_app_config, import_app, load_config
from serve_core.errors import ServeCoreError

__all__ = ["apply_overrides", "deploy_app_config", "import_app", "load_config", "main", "parser"]

ENTRY_POINT_GROUP = "serve_core.cli"
Register = Callable[[argparse._SubParsersAction], None]  # type: ignore[type-arg]


def plugins() -> dict[str, Register]:
    """The command groups other installed packages register, by entry point name."""
    found: dict[str, Register] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as e:  # a broken plugin must not take `serve-core status` down with it
            print(f"warning: serve-core command group {ep.name!r} ({ep.value}) did not load: {e}", file=sys.stderr)
    return found


def parser(extra: dict[str, Register] | None = None) -> argparse.ArgumentParser:
    groups = plugins() if extra is None else extra
    p = argparse.ArgumentParser(
        prog="serve-core", description="A Ray Serve-compatible model server.",
        epilog="More commands (cluster, simulate, chaos, load, tune, dashboards) come from the testbed packages through the "
               f"{ENTRY_POINT_GROUP!r} entry points; if they are missing, reinstall: pip install -e .")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = p.add_subparsers(dest="command", required=True)
    apps.add_commands(sub)
    build.add_commands(sub)
    score.add_commands(sub)
    for _, register in sorted(groups.items()):
        register(sub)
    return p


def standalone(prog: str, register: Register, argv: list[str] | None = None, description: str | None = None) -> int:
    """A command group run without serve-core (``python -m tune.simulate_cli simulate ...``):
    0 on success, 2 on a bad input, as under serve-core."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    register(p.add_subparsers(dest="command", required=True))
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(ns.handler(ns))
    except ServeCoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def passthrough(sub: argparse._SubParsersAction, name: str, help: str, main: str) -> None:  # type: ignore[type-arg]
    """A command group whose arguments go, as given, to another package's own command line:
    ``serve-core chaos run X`` is ``python -m chaos run X``. ``main`` ("module:function") is
    that package's ``main(argv, prog)``, imported only when the command runs (every other
    command would pay for its imports); ``serve-core NAME --help`` prints its help."""
    sub.add_parser(name, help=help, add_help=False).set_defaults(passthrough=main, prog=f"serve-core {name}")


def _run_passthrough(main: str, args: list[str], prog: str) -> int:
    module, _, function = main.partition(":")
    return int(getattr(importlib.import_module(module), function)(args, prog))


def main(argv: list[str] | None = None, extra: dict[str, Register] | None = None) -> int:
    ns, rest = parser(extra).parse_known_args(argv)
    if getattr(ns, "passthrough", None) is not None:
        return _run_passthrough(ns.passthrough, rest, ns.prog)
    if rest:
        parser(extra).error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(ns.handler(ns))
    except ServeCoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
