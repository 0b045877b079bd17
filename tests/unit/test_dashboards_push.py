"""`serve-core dashboards push` against a fake Grafana: a real HTTP server on 127.0.0.1 that
plays the few API endpoints a push uses and records every request (no Grafana runs here;
tests/integration/test_dashboards_grafana.py pushes to a real one when GRAFANA_URL is set).

What a push sends: the folder created once, every dashboard posted with overwrite into it,
reading from the named data source's uid, the token in the Authorization header; a second
push posts nothing. And what it says when Grafana refuses or is not there."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards import cli
from dashboards.definitions import all_dashboards
from dashboards.grafana_model import DATASOURCE_VARIABLE
from dashboards.push import folder_uid, with_datasource
from serve_core import cli as serve_core_cli

TOKEN = "glsa_test-token-0123456789"
DS_UID = "prom-uid-42"
UIDS = sorted(d.uid for d in all_dashboards())


@dataclass
class FakeGrafana:
    """Grafana's state and the requests it saw."""

    token: str = TOKEN
    datasources: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": 1, "uid": DS_UID, "name": "Team Prometheus", "type": "prometheus"},
        {"id": 2, "uid": "loki", "name": "Loki", "type": "loki"},
    ])
    folders: list[dict[str, Any]] = field(default_factory=lambda: [{"id": 7, "uid": "other", "title": "Other"}])
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)

    def calls(self, method: str, path: str = "") -> list[Any]:
        return [body for m, p, _, body in self.requests if m == method and p.startswith(path)]

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, headers, body))
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "invalid API key"}
        if (method, path) == ("GET", "/api/folders"):
            return 200, self.folders
        if (method, path) == ("POST", "/api/folders"):
            if any(f["uid"] == body.get("uid") for f in self.folders):
                return 409, {"message": "a folder with the same uid already exists"}
            folder = {"id": 100 + len(self.folders), "uid": body.get("uid") or "generated", "title": body["title"]}
            self.folders.append(folder)
            return 200, folder
        if (method, path) == ("GET", "/api/datasources"):
            return 200, self.datasources
        if method == "GET" and path.startswith("/api/datasources/name/"):
            name = unquote(path.removeprefix("/api/datasources/name/"))
            found = [d for d in self.datasources if d["name"] == name]
            return (200, found[0]) if found else (404, {"message": "Data source not found"})
        if method == "GET" and path.startswith("/api/dashboards/uid/"):
            held = self.dashboards.get(path.removeprefix("/api/dashboards/uid/"))
            return (200, held) if held else (404, {"message": "Dashboard not found"})
        if (method, path) == ("POST", "/api/dashboards/db"):
            d = dict(body["dashboard"])
            old = self.dashboards.get(d["uid"])
            if old and not body.get("overwrite"):
                return 412, {"message": "The dashboard has been changed by someone else"}
            version = old["dashboard"]["version"] + 1 if old else 1
            d.update(id=old["dashboard"]["id"] if old else 1000 + len(self.dashboards), version=version)
            folder = next(f for f in self.folders if f["uid"] == body["folderUid"])
            url = f"/d/{d['uid']}/{re.sub('[^a-z0-9]+', '-', d['title'].lower()).strip('-')}"
            self.dashboards[d["uid"]] = {"dashboard": d, "meta": {"folderUid": folder["uid"], "folderId": folder["id"],
                                                                 "url": url, "version": version}}
            return 200, {"id": d["id"], "uid": d["uid"], "url": url, "status": "success", "version": version}
        return 404, {"message": "Not found"}


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = fake.answer(self.command, self.path, dict(self.headers), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(["push", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (cli.TOKEN_ENV, cli.PASSWORD_ENV, cli.URL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(cli.TOKEN_ENV, TOKEN)


def test_first_push_creates_the_folder_and_every_dashboard_reading_the_named_datasource(grafana, capsys):
    fake, url = grafana
    code, lines, err = run(capsys, "--url", url, "--datasource", "Team Prometheus")
    assert (code, err) == (0, "")
    assert fake.calls("POST", "/api/folders") == [{"title": "serve-core", "uid": "serve-core"}]
    posts = fake.calls("POST", "/api/dashboards/db")
    assert sorted(p["dashboard"]["uid"] for p in posts) == UIDS
    for p in posts:
        assert p["overwrite"] is True and p["folderUid"] == "serve-core"
        variable = next(v for v in p["dashboard"]["templating"]["list"] if v["name"] == DATASOURCE_VARIABLE)
        assert variable["current"]["value"] == DS_UID and variable["current"]["text"] == "Team Prometheus"
        assert "prometheus" not in json.dumps(variable["current"])  # the provisioned uid is gone
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for _, _, h, _ in fake.requests)
    assert len(lines) == len(UIDS) and all(line.startswith("created ") for line in lines)
    assert f"{url}/d/serve-core-serving/" in "\n".join(lines)
    assert TOKEN not in "\n".join(lines)


def test_second_push_changes_nothing(grafana, capsys):
    fake, url = grafana
    assert run(capsys, "--url", url, "--datasource", "Team Prometheus")[0] == 0
    before = json.dumps(fake.dashboards, sort_keys=True)
    fake.requests.clear()
    code, lines, _ = run(capsys, "--url", url, "--datasource", "Team Prometheus")
    assert code == 0
    assert fake.calls("POST") == []  # no folder, no dashboard: not even a new version
    assert json.dumps(fake.dashboards, sort_keys=True) == before
    assert [line.split()[0] for line in lines] == ["unchanged"] * len(UIDS)


def test_a_changed_dashboard_is_updated_and_an_existing_folder_reused(grafana, capsys):
    fake, url = grafana
    fake.folders.append({"id": 9, "uid": "abc", "title": "Serving"})
    assert run(capsys, "--url", url, "--datasource", "Team Prometheus", "--folder", "Serving")[0] == 0
    assert fake.calls("POST", "/api/folders") == []
    fake.dashboards["serve-core-cluster"]["dashboard"]["title"] = "edited by hand"
    fake.requests.clear()
    code, lines, _ = run(capsys, "--url", url, "--datasource", "Team Prometheus", "--folder", "Serving")
    assert code == 0
    assert [p["dashboard"]["uid"] for p in fake.calls("POST", "/api/dashboards/db")] == ["serve-core-cluster"]
    assert fake.dashboards["serve-core-cluster"]["meta"]["folderUid"] == "abc"
    assert fake.dashboards["serve-core-cluster"]["dashboard"]["version"] == 2
    assert sorted(line.split()[0] for line in lines) == ["unchanged"] * (len(UIDS) - 1) + ["updated"]


def test_a_missing_datasource_is_named_with_the_flag_and_nothing_is_written(grafana, capsys):
    fake, url = grafana
    code, lines, err = run(capsys, "--url", url, "--datasource", "Prometheus")
    assert code == 2 and lines == []
    assert "no data source named 'Prometheus'" in err and "'Team Prometheus'" in err and "--datasource" in err
    assert fake.calls("POST") == []


def test_a_datasource_of_another_type_is_refused(grafana, capsys):
    _, url = grafana
    code, _, err = run(capsys, "--url", url, "--datasource", "Loki")
    assert code == 2 and "'loki'" in err and "--datasource" in err


def test_a_rejected_token_names_where_it_came_from(grafana, capsys, monkeypatch, tmp_path):
    fake, url = grafana
    monkeypatch.setenv(cli.TOKEN_ENV, "wrong")
    code, lines, err = run(capsys, "--url", url)
    assert code == 2 and lines == []
    assert "401" in err and "GRAFANA_TOKEN" in err and "wrong" not in err
    token_file = tmp_path / "token"
    token_file.write_text("also-wrong\n")
    code, _, err = run(capsys, "--url", url, "--token-file", str(token_file))
    assert code == 2 and f"--token-file {token_file}" in err and "also-wrong" not in err
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv(cli.TOKEN_ENV)
    assert run(capsys, "--url", url, "--token-file", str(token_file), "--datasource", "Team Prometheus")[0] == 0


def test_a_forbidden_action_and_a_wrong_path_say_what_to_fix(grafana, capsys):
    fake, url = grafana
    original = fake.answer

    def forbid_folders(method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if (method, path) == ("POST", "/api/folders"):
            return 403, {"message": "access denied"}
        return original(method, path, headers, body)

    fake.answer = forbid_folders  # type: ignore[method-assign]
    code, _, err = run(capsys, "--url", url, "--datasource", "Team Prometheus")
    assert code == 2 and "403" in err and "create folder 'serve-core'" in err and "Editor" in err
    code, _, err = run(capsys, "--url", url + "/not-grafana")
    assert code == 2 and "404" in err and "--url" in err


def test_nothing_listening_is_a_connection_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    code, _, err = run(capsys, "--url", f"http://127.0.0.1:{port}", "--timeout", "2")
    assert code == 2 and "cannot reach Grafana" in err and "Connection refused" in err and "--url" in err


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--url", "http://127.0.0.1:1"], {}, "export GRAFANA_TOKEN"),
    (["--url", "http://127.0.0.1:1", "--user", "admin"], {}, "GRAFANA_PASSWORD is not set"),
    (["--url", "http://127.0.0.1:1", "--token", "x", "--user", "admin"], {}, "--token and --user"),
    (["--url", "http://127.0.0.1:1", "--token-file", "/no/such/file"], {}, "--token-file '/no/such/file'"),
    (["--url", "grafana:3000"], {"GRAFANA_TOKEN": "x"}, "--url 'grafana:3000' is not an http(s) URL"),
    ([], {"GRAFANA_TOKEN": "x"}, "--url is not given and GRAFANA_URL is not set"),
])
def test_bad_credentials_and_urls_are_named_before_any_request(capsys, monkeypatch, argv, env, message):
    monkeypatch.delenv(cli.TOKEN_ENV)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err, err


def test_basic_auth_takes_the_password_from_the_environment(grafana, capsys, monkeypatch):
    fake, url = grafana
    monkeypatch.setenv(cli.PASSWORD_ENV, "s3cret")
    assert run(capsys, "--url", url, "--user", "admin", "--datasource", "Team Prometheus")[0] == 2  # 401: not a token
    assert fake.requests[0][2]["Authorization"].startswith("Basic ")


def test_serve_core_runs_it_through_the_entry_point_function(grafana, capsys):
    fake, url = grafana
    code = serve_core_cli.main(["dashboards", "push", "--url", url, "--datasource", "Team Prometheus"],
                               extra={"dashboards": cli.add_commands})
    assert code == 0 and len(fake.calls("POST", "/api/dashboards/db")) == len(UIDS)
    code = serve_core_cli.main(["dashboards", "push", "--url", url], extra={"dashboards": cli.add_commands})
    assert code == 2 and "--datasource" in capsys.readouterr().err


def test_with_datasource_leaves_the_panels_on_the_variable():
    d = all_dashboards()[0].to_json()
    out = with_datasource(d, "u1", "P")
    assert d != out and d["templating"] == all_dashboards()[0].to_json()["templating"]  # a copy
    assert {p["datasource"]["uid"] for p in out["panels"] if "datasource" in p} == {"${datasource}"}


@given(st.text(max_size=80))
def test_folder_uids_are_what_grafana_accepts(title):
    uid = folder_uid(title)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid) and uid[0] not in "-_"
