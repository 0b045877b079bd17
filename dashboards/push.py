"""Push the generated dashboards into a Grafana a team already runs, through its HTTP API.

The compose Grafana gets the dashboards from provisioning files (``build.py``,
``provision.py``); a Grafana that is already running elsewhere takes neither files nor a
restart, but its API needs only a token. ``grafana-client`` (the maintained successor of
grafana-api) speaks that API. A push, in order:

1. lists the folders: the cheapest call that proves the URL is Grafana and the token works;
2. looks the Prometheus data source up by name, before anything is written, so a wrong name
   leaves Grafana as it was;
3. finds the folder by title (or by the uid a push gives it), creating it when missing;
4. reads what Grafana holds under each dashboard's uid and posts the dashboard (``overwrite``,
   into the folder) only where it differs, so pushing twice changes nothing, not even
   Grafana's version counter.

The panels keep referring to the ``${datasource}`` variable (a viewer can still switch); the
variable's default, and any fixed reference to the provisioned uid, become the data source
found. Grafana's and the network's errors become ``PushError``s naming the flag to fix.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from dashboards import provision
from dashboards.grafana_model import DATASOURCE_VARIABLE
from serve_core.errors import ServeCoreError

DEFAULT_TIMEOUT_S = 10.0
MESSAGE = "pushed by serve-core dashboards push"  # the version note in Grafana's history
VOLATILE = ("id", "version")  # what Grafana assigns: left out when comparing with what it holds
_T = TypeVar("_T")


class PushError(ServeCoreError):
    """A push that could not be done: what happened, and the flag or setting that fixes it."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what, fix)
        self.what, self.fix = what, fix

    def __str__(self) -> str:
        return f"{self.what}; {self.fix}"


@dataclass(frozen=True)
class Credential:
    """What authenticates to Grafana (a token, or a user and password) and where it came from,
    for the 401 message: the value itself is never printed."""

    auth: str | tuple[str, str]
    source: str  # e.g. "the token in GRAFANA_TOKEN"


@dataclass(frozen=True)
class Pushed:
    uid: str
    title: str
    status: str  # "created" | "updated" | "unchanged"
    url: str

    def line(self) -> str:
        return f"{self.status:<9} {self.uid}  {self.url}"


@dataclass(frozen=True)
class Target:
    """The folder and the data source the dashboards go into and read from."""

    folder_uid: str
    folder_id: int | None
    folder_created: bool
    datasource_uid: str
    datasource_name: str


class Grafana:
    """A grafana-client API with its errors translated at the boundary."""

    def __init__(self, url: str, credential: Credential, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise PushError(f"--url {url!r} is not an http(s) URL", "give Grafana's root URL, e.g. http://localhost:3000")
        self.url = url.rstrip("/")
        self.credential = credential
        # grafana-client joins the path prefix and "api" with nothing between: keep the slash.
        prefix = parts.path.strip("/")
        self.api = GrafanaApi(auth=credential.auth, host=parts.hostname, port=port, protocol=parts.scheme,
                              url_path_prefix=f"{prefix}/" if prefix else "", timeout=timeout_s)
        self.timeout_s = timeout_s

    def call(self, action: str, fn: Callable[..., _T], *args: Any, missing_ok: bool = False) -> _T | None:
        """``fn(*args)``; None for a 404 when ``missing_ok``; any other failure a ``PushError``."""
        try:
            return fn(*args)
        except GrafanaClientError as e:
            if e.status_code == 404 and missing_ok:
                return None
            raise self._client_error(action, e) from None
        except GrafanaException as e:
            raise PushError(f"Grafana at {self.url} failed to {action}: {e.message}",
                            "see Grafana's server log; try again once it answers") from None
        except requests.exceptions.Timeout:
            raise PushError(f"Grafana at {self.url} did not answer within {self.timeout_s:g}s to {action}",
                            "check --url and that Grafana is up, or raise --timeout") from None
        except requests.exceptions.ConnectionError as e:
            raise PushError(f"cannot reach Grafana at {self.url} to {action} ({_reason(e)})",
                            "check --url and that Grafana is running and reachable from here") from None
        except ValueError:  # a 2xx answer that is not JSON: a web server, not Grafana's API
            raise PushError(f"{self.url} did not answer as Grafana's API to {action} (not JSON)",
                            "check --url: give Grafana's root URL, with its sub-path if it is served under one") from None

    def _client_error(self, action: str, e: GrafanaClientError) -> PushError:
        if isinstance(e, GrafanaUnauthorizedError) or e.status_code == 401:
            return PushError(f"Grafana at {self.url} refused the credentials (401 Unauthorized) to {action}",
                             f"check {self.credential.source}: it must be valid for this Grafana (a service account "
                             "token from Administration > Service accounts, or a user's password)")
        if e.status_code == 403:
            return PushError(f"Grafana at {self.url} forbids {self.credential.source} to {action} (403 Forbidden)",
                             "give its service account (or user) the Editor role, or Admin if it must create the folder")
        if e.status_code == 404:
            return PushError(f"Grafana at {self.url} answered 404 Not Found to {action}",
                             "check --url: give Grafana's root URL, with its sub-path if it is served under one")
        return PushError(f"Grafana at {self.url} refused to {action} ({e.status_code}: {e.message})",
                         "fix what Grafana names, or see its server log")

    def link(self, path: object) -> str:
        """An absolute link from the path Grafana answers (``/d/UID/slug``, its sub-path included)."""
        if not isinstance(path, str) or not path.startswith("/"):
            return self.url
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{path}"


def _reason(e: Exception) -> str:
    text = str(e)
    for known in ("Connection refused", "Name or service not known", "No route to host", "certificate verify failed"):
        if known in text:
            return known
    return type(e).__name__


def _list(answer: object, what: str, g: Grafana) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(x, dict) for x in answer):
        raise PushError(f"{g.url} did not answer as Grafana's API when asked for {what}",
                        "check --url: give Grafana's root URL, with its sub-path if it is served under one")
    return answer


def _dict(answer: object, what: str, g: Grafana) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise PushError(f"{g.url} did not answer as Grafana's API when asked for {what}",
                        "check --url: give Grafana's root URL, with its sub-path if it is served under one")
    return answer


def folder_uid(title: str) -> str:
    """The uid a push gives a folder it creates: its title as Grafana accepts a uid (at most 40
    letters, digits, ``-`` and ``_``); "serve-core" stays the provisioned folder's uid."""
    out = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in title.lower()).strip("-_")
    return out[:40].strip("-_") or "serve-core"


def with_datasource(dashboard: dict[str, Any], uid: str, name: str) -> dict[str, Any]:
    """A copy of ``dashboard`` reading from data source ``uid``: the ``${datasource}`` variable's
    default, and every fixed reference to the provisioned uid, point at it."""
    out = copy.deepcopy(dashboard)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("datasource")
            if isinstance(ref, dict) and ref.get("type") == "prometheus" and ref.get("uid") == provision.DATASOURCE_UID:
                ref["uid"] = uid
            if node.get("type") == "datasource" and node.get("name") == DATASOURCE_VARIABLE:
                node["current"] = {"selected": False, "text": name, "value": uid}
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


def comparable(dashboard: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dashboard.items() if k not in VOLATILE}


def prepare(g: Grafana, folder: str, datasource: str) -> Target:
    """Steps 1 to 3 of the module's docstring: the folder (created if missing) and the data source's uid."""
    folders = _list(g.call("list folders", g.api.folder.get_all_folders), "its folders", g)
    answer = g.call(f"look up data source {datasource!r}", g.api.datasource.get_datasource_by_name,
                    quote(datasource, safe=""), missing_ok=True)
    if answer is None:
        names = [str(d.get("name")) for d in _list(g.call("list data sources", g.api.datasource.list_datasources),
                                                    "its data sources", g)]
        has = f" (it has {', '.join(repr(n) for n in names)})" if names else " (it has none)"
        raise PushError(f"Grafana at {g.url} has no data source named {datasource!r}{has}",
                        "give --datasource the name of its Prometheus data source, as Connections > Data sources "
                        "lists it, or add one there")
    ds = _dict(answer, f"data source {datasource!r}", g)
    if ds.get("type") != "prometheus":
        raise PushError(f"data source {datasource!r} in Grafana at {g.url} is of type {ds.get('type')!r}",
                        "the dashboards' queries are PromQL: give --datasource the name of a Prometheus data source")
    wanted = folder_uid(folder)
    found = next((f for f in folders if f.get("title") == folder), None) or next(
        (f for f in folders if f.get("uid") == wanted), None)
    created = found is None
    if found is None:
        found = _dict(g.call(f"create folder {folder!r}", g.api.folder.create_folder, folder, wanted),
                      f"a new folder {folder!r}", g)
    fid = found.get("id")
    return Target(str(found["uid"]), fid if isinstance(fid, int) else None, created, str(ds["uid"]), datasource)


def push_one(g: Grafana, dashboard: dict[str, Any], target: Target) -> Pushed:
    """Create or update one dashboard in the target folder; "unchanged" posts nothing."""
    wanted = with_datasource(dashboard, target.datasource_uid, target.datasource_name)
    uid, title = str(wanted["uid"]), str(wanted.get("title", ""))
    held = g.call(f"read dashboard {uid}", g.api.dashboard.get_dashboard, uid, missing_ok=True)
    if held is not None:
        held = _dict(held, f"dashboard {uid}", g)
        meta = held.get("meta") or {}
        same_folder = (meta.get("folderUid") == target.folder_uid if "folderUid" in meta
                       else target.folder_id is not None and meta.get("folderId") == target.folder_id)
        if same_folder and comparable(held.get("dashboard") or {}) == comparable(wanted):
            return Pushed(uid, title, "unchanged", g.link(meta.get("url")))
    body = {"dashboard": {**wanted, "id": None}, "folderUid": target.folder_uid, "overwrite": True, "message": MESSAGE}
    answer = _dict(g.call(f"save dashboard {uid}", g.api.dashboard.update_dashboard, body), f"saving {uid}", g)
    return Pushed(uid, title, "created" if held is None else "updated", g.link(answer.get("url")))


def push(g: Grafana, dashboards: Sequence[dict[str, Any]], folder: str = provision.FOLDER,
         datasource: str = provision.DATASOURCE_NAME) -> Iterator[Pushed]:
    """Push ``dashboards`` (Grafana's JSON model) into ``folder``, reading from ``datasource``;
    yields each result as it is done, so a caller prints it before the next request."""
    target = prepare(g, folder, datasource)
    for d in dashboards:
        yield push_one(g, d, target)
