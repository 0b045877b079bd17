"""`serve-core dashboards push`: the generated dashboards into a Grafana a team already runs.

The testbed registers ``dashboards`` with serve_core's CLI through the ``serve_core.cli`` entry
point group (pyproject.toml), so serve_core never imports it; ``python -m dashboards.cli push
...`` runs the same command without serve_core's CLI. The credential comes from the
environment or a file by preference: a command line is visible to every user of the machine
(``ps``) and is kept in shell history.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from dashboards import provision
from dashboards.definitions import all_dashboards
from dashboards.push import DEFAULT_TIMEOUT_S, Credential, Grafana, PushError, push

TOKEN_ENV, PASSWORD_ENV, URL_ENV = "GRAFANA_TOKEN", "GRAFANA_PASSWORD", "GRAFANA_URL"

DESCRIPTION = (
    "Create or update serve-core's dashboards in a folder of an existing Grafana, reading from its "
    "Prometheus data source (found by name). Pushing again changes nothing: each dashboard is reported "
    "created, updated or unchanged. Credentials, in order of preference: the environment variable "
    f"{TOKEN_ENV} (a service account token with the Editor role), --token-file FILE, or --user NAME with the "
    f"password in {PASSWORD_ENV}; --token TOKEN works too, but puts the secret on the command line "
    "(visible in ps and shell history)."
)


def credential(ns: argparse.Namespace, env: Mapping[str, str] = os.environ) -> Credential:
    """The credential the flags and the environment give; a ``PushError`` names the flag to fix."""
    given = [flag for flag, v in (("--token", ns.token), ("--token-file", ns.token_file), ("--user", ns.user)) if v]
    if len(given) > 1:
        raise PushError(f"{' and '.join(given)} were both given", "give one credential")
    if ns.token:
        return Credential(ns.token, "the token given with --token")
    if ns.token_file:
        try:
            token = Path(ns.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise PushError(f"--token-file {ns.token_file!r} cannot be read ({e.strerror})",
                            "give a file holding a Grafana service account token") from None
        if not token:
            raise PushError(f"--token-file {ns.token_file!r} is empty", "write the service account token into it")
        return Credential(token, f"the token in --token-file {ns.token_file}")
    if ns.user:
        password = env.get(PASSWORD_ENV)
        if not password:
            raise PushError(f"--user {ns.user!r} needs a password and {PASSWORD_ENV} is not set",
                            f"export {PASSWORD_ENV} with the user's password (it is never read from the command line)")
        return Credential((ns.user, password), f"user {ns.user!r} with the password in {PASSWORD_ENV}")
    if env.get(TOKEN_ENV, "").strip():
        return Credential(env[TOKEN_ENV].strip(), f"the token in {TOKEN_ENV}")
    raise PushError("no Grafana credentials given",
                    f"export {TOKEN_ENV} with a service account token (Administration > Service accounts, role "
                    f"Editor), or give --token-file FILE, or --user NAME with {PASSWORD_ENV} set")


def cmd_push(ns: argparse.Namespace) -> int:
    if not ns.url:
        raise PushError(f"no Grafana URL: --url is not given and {URL_ENV} is not set",
                        "give --url http://HOST:3000 (Grafana's root URL)")
    if not ns.timeout > 0:
        raise PushError(f"--timeout {ns.timeout} is not positive", "give the seconds to wait for each answer, e.g. 10")
    g = Grafana(ns.url, credential(ns), timeout_s=ns.timeout)
    for result in push(g, [d.to_json() for d in all_dashboards()], folder=ns.folder, datasource=ns.datasource):
        print(result.line(), flush=True)
    return 0


def add_push(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("push", help="create or update the dashboards in an existing Grafana (idempotent)",
                       description=DESCRIPTION)
    p.add_argument("--url", default=os.environ.get(URL_ENV),
                   help=f"Grafana's root URL, e.g. http://localhost:3000 (default: ${URL_ENV})")
    p.add_argument("--token", help=f"a service account token; prefer ${TOKEN_ENV} or --token-file (a command line "
                                   "is visible to other users and kept in shell history)")
    p.add_argument("--token-file", metavar="FILE", help="a file holding the token")
    p.add_argument("--user", help=f"basic auth as this user instead of a token; the password comes from ${PASSWORD_ENV}")
    p.add_argument("--folder", default=provision.FOLDER,
                   help=f"the folder's title, created if missing (default {provision.FOLDER!r})")
    p.add_argument("--datasource", default=provision.DATASOURCE_NAME,
                   help=f"name of the Prometheus data source the panels read (default {provision.DATASOURCE_NAME!r})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds to wait for each answer (default {DEFAULT_TIMEOUT_S:g})")
    p.set_defaults(handler=cmd_push)


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dashboards`` with its subcommands to serve-core's subparsers."""
    d = sub.add_parser("dashboards", help="serve-core's Grafana dashboards (push them into an existing Grafana)",
                       description="serve-core's Grafana dashboards; `python -m dashboards.build` writes them as files.")
    add_push(d.add_subparsers(dest="dashboards_command", required=True))


def main(argv: list[str] | None = None) -> int:
    """``push ...`` as `serve-core dashboards push ...` runs it: 0 on success, 2 on an error."""
    from serve_core.cli import standalone

    return standalone("python -m dashboards.cli", add_push, argv, DESCRIPTION)


if __name__ == "__main__":
    sys.exit(main())
