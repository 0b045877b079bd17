import pytest

from serve_core import cli
from serve_core.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        cli.load_config(str(tmp_path / "none.yaml"))
    assert "cannot read it" in str(e.value)


def test_bad_yaml(tmp_path):
    with pytest.raises(ConfigError) as e:
        cli.load_config(write(tmp_path, "applications: [\n"))
    assert "not valid YAML" in str(e.value)


def test_bad_field_named(tmp_path):
    path = write(tmp_path, "applications:\n  - name: a\n    import_path: m:app\n    deployments:\n      - name: X\n        max_ongoing_requests: -3\n")
    with pytest.raises(ConfigError) as e:
        cli.load_config(path)
    assert e.value.field == "applications.0.deployments.0.max_ongoing_requests"


def test_unknown_key_named(tmp_path):
    with pytest.raises(ConfigError) as e:
        cli.load_config(write(tmp_path, "applications:\n  - name: a\n    import_path: m:app\n    replicas: 3\n"))
    assert e.value.field == "applications.0.replicas"


def test_import_errors_are_clear():
    with pytest.raises(ConfigError) as e:
        cli.import_app("no_such_module_xyz:app")
    assert "cannot import module" in str(e.value)
    with pytest.raises(ConfigError) as e:
        cli.import_app("json:nothing_here")
    assert "has no attribute" in str(e.value)
