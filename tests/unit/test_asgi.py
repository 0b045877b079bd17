import json

from serve_core.data.asgi import to_messages, trim_scope


def test_conversion_matches_ray_serve():
    assert to_messages("hi") == (200, [[b"content-type", b"text/plain; charset=utf-8"]], b"hi")
    assert to_messages(b"raw")[1] == [[b"content-type", b"text/plain"]]
    status, headers, body = to_messages({"a": [1, 2]})
    assert headers == [[b"content-type", b"application/json"]] and json.loads(body) == {"a": [1, 2]}
    assert body == b'{"a":[1,2]}'
    assert to_messages(None)[2] == b""


def test_values_plain_json_cannot_hold_go_through_fastapis_encoder():
    import datetime

    import pydantic

    class Answer(pydantic.BaseModel):
        label: str
        at: datetime.date

    assert json.loads(to_messages({"tags": {"x"}})[2]) == {"tags": ["x"]}
    assert json.loads(to_messages(Answer(label="ok", at=datetime.date(2026, 12, 2)))[2]) == {"label": "ok", "at": "2026-12-02"}


def test_trim_scope_sets_root_path_and_drops_unpicklables():
    scope = {"type": "http", "path": "/app/x", "headers": [(b"a", b"b")], "app": object(), "state": {}, "root_path": ""}
    out = trim_scope(scope, "/app")
    assert out["root_path"] == "/app" and "app" not in out and "state" not in out
    assert trim_scope(scope, "/")["root_path"] == ""
