"""Ray Serve's config file, as its `serve build` writes it, read by serve_core
(serve_core/config_file.py), and the file `serve-core build` writes (serve_core/cli/build.py),
which Ray Serve's own schema must accept."""

import logging
import pathlib
import sys

import pytest
import yaml

from serve_core import log_setup
from serve_core.cli import build as build_cli
from serve_core.cli.apps import load_config
from serve_core.errors import ConfigError

DATA = pathlib.Path(__file__).parent / "data"
RAY_BUILT = DATA / "ray_serve_build.yaml"


def test_a_config_ray_serve_built_loads_honours_what_has_a_meaning_and_names_the_rest(caplog):
    with caplog.at_level(logging.WARNING, "serve_core.cli"):
        cfg = load_config(str(RAY_BUILT))
    opts = cfg.effective_http_options()
    assert (opts.host, opts.port, opts.location) == ("0.0.0.0", 8000, "EveryNode")
    assert opts.logging_config is not None and opts.logging_config.log_level == "INFO"
    assert opts.logging_config.enable_access_log is True
    hello = cfg.applications[0].deployments[0]
    assert hello.changes() == {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0.5}, "max_replicas_per_node": 1,
                               "max_surge_fraction": 0.5}
    assert cfg.ignored() == ["grpc_options", "applications[0].deployments[0].placement_group_bundles",
                             "applications[0].deployments[0].placement_group_strategy"]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("accepted and ignored" in w and "placement_group_strategy" in w and "grpc_options" in w for w in warnings)
    assert any("http_options.host is 0.0.0.0" in w and "127.0.0.1" in w for w in warnings)


def write(tmp_path, doc):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("doc,field", [
    ({"applications": [{"import_path": "m:app", "deployments": [{"name": "A", "num_replica": 2}]}]},
     "applications.0.deployments.0.num_replica"),
    ({"logging_config": {"log_level": "LOUD"}, "applications": [{"import_path": "m:app"}]}, "logging_config.log_level"),
    ({"proxy_location": "Everywhere", "applications": [{"import_path": "m:app"}]}, "proxy_location"),
])
def test_keys_nobody_knows_and_bad_values_still_fail_naming_the_field(tmp_path, doc, field):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, doc))
    assert e.value.field == field


def test_serve_core_extras_stay_valid(tmp_path):
    cfg = load_config(write(tmp_path, {
        "http_options": {"port": 8100, "max_body_bytes": 2048, "location": "HeadOnly"},
        "applications": [{"import_path": "m:app", "deployments": [{"name": "A", "idempotent": True,
                                                                   "max_surge_fraction": 0.3}]}]}))
    assert cfg.effective_http_options().location == "HeadOnly" and cfg.ignored() == []
    assert cfg.applications[0].deployments[0].changes() == {"idempotent": True, "max_surge_fraction": 0.3}


def test_the_file_serve_core_build_writes_loads_on_ray_serve_and_on_serve_core(tmp_path, monkeypatch, caplog):
    from ray.serve.schema import ServeDeploySchema

    (tmp_path / "built_app.py").write_text(
        "import serve_core as serve\n\n"
        "@serve.deployment(autoscaling_config={'min_replicas': 1, 'max_replicas': 4, 'panic_threshold': 3})\n"
        "class Model:\n    def __call__(self, x):\n        return x\n\n"
        "@serve.deployment(num_replicas=2, max_replicas_per_node=1, max_surge_fraction=0.5, idempotent=True,\n"
        "                  ray_actor_options={'num_cpus': 0.5})\n"
        "class Ingress:\n    def __init__(self, model):\n        self.model = model\n\n"
        "app = Ingress.bind(Model.bind())\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    with caplog.at_level(logging.WARNING, "serve_core.cli"):
        doc = build_cli.build(["built_app:app"])
    assert any("idempotent" in r.getMessage() for r in caplog.records)
    assert any("autoscaling_config.panic_threshold" in r.getMessage() for r in caplog.records)
    ServeDeploySchema.parse_obj(doc)  # Ray Serve's own schema accepts it
    deps = {d["name"]: d for d in doc["applications"][0]["deployments"]}
    assert deps["Ingress"] == {"name": "Ingress", "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.5},
                               "max_replicas_per_node": 1, "max_surge_percent": 50.0}
    assert deps["Model"]["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4}
    assert doc["http_options"] == {"host": "127.0.0.1", "port": 8000}
    cfg = load_config(write(tmp_path, doc))  # and serve_core's
    assert cfg.applications[0].route_prefix == "/" and cfg.ignored() == []


def test_logging_config_sets_the_level_once_and_the_access_log():
    root = logging.getLogger("serve_core")
    before = (root.level, list(root.handlers), root.propagate)
    try:
        assert log_setup.apply(None) is False and root.level == before[0]
        assert log_setup.apply({"log_level": "DEBUG", "enable_access_log": True}) is True
        assert root.level == logging.DEBUG
        assert log_setup.apply({"log_level": "ERROR", "enable_access_log": False}) is False
        assert root.level == logging.ERROR
        assert len(root.handlers) == len(before[1]) + 1  # one handler, however often applied
    finally:
        root.setLevel(before[0])
        root.handlers[:] = before[1]
        root.propagate = before[2]


class _Ctx:
    listeners: list = []

    def start_watch(self):
        pass


@pytest.mark.parametrize("enabled", [True, False])
def test_a_proxy_logs_a_line_per_request_when_the_access_log_is_on(enabled):
    import asyncio

    from serve_core.data.proxy import ProxyApp

    async def main():
        app = ProxyApp(_Ctx(), {"logging_config": {"log_level": "INFO", "enable_access_log": enabled}})
        app.on_snapshot({"routes": {"/": ("default", "default#Model")}})

        async def forward(scope, receive, send, route, request_id):
            return 201

        app.forward = forward
        await app({"type": "http", "path": "/predict", "method": "POST", "headers": [(b"x-request-id", b"r-7")]},
                  None, None)

    root = logging.getLogger("serve_core")
    before = (root.level, list(root.handlers), root.propagate)
    seen: list[logging.LogRecord] = []
    kept = logging.Handler()
    kept.emit = seen.append  # serve_core's loggers stop propagating once configured: listen on the logger
    log_setup.ACCESS.addHandler(kept)
    try:
        asyncio.run(main())
    finally:
        log_setup.ACCESS.removeHandler(kept)
        root.setLevel(before[0])
        root.handlers[:] = before[1]
        root.propagate = before[2]
    lines = [r.getMessage() for r in seen]
    assert [line.split(" ")[:3] + line.split(" ")[4:] for line in lines] == (
        [["POST", "/predict", "201", "r-7"]] if enabled else [])
