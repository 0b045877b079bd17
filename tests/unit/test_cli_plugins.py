"""serve-core's command groups from other packages (entry points ``serve_core.cli``): the
testbed's commands appear without serve_core importing the testbed, and a broken one does
not take the others down."""

from importlib import metadata

import pytest

from serve_core import cli
from tune import simulate_cli


class _EntryPoint:
    def __init__(self, name, value, loaded=None, error=None):
        self.name, self.value, self._loaded, self._error = name, value, loaded, error

    def load(self):
        if self._error:
            raise self._error
        return self._loaded


def test_registered_groups_become_commands(monkeypatch, capsys):
    eps = [_EntryPoint("simulate", "tune.simulate_cli:add_commands", simulate_cli.add_commands)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps if group == cli.ENTRY_POINT_GROUP else [])
    assert cli.main(["simulate", "--shape", "constant", "--rate", "5", "--duration", "2",
                     "--set", "autoscaling_config.max_replicas=2", "--set", "service_time=0.01"]) == 0
    assert "requests" in capsys.readouterr().out


def test_a_broken_group_is_reported_and_the_rest_still_run(monkeypatch, capsys):
    eps = [_EntryPoint("cluster", "embedded_cluster.commands:nope", error=ImportError("no module"))]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps)
    p = cli.parser()
    assert "did not load" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        p.parse_args(["cluster", "up"])  # unknown: the group did not load
    assert p.parse_args(["status"]).handler is cli.apps.cmd_status


def test_serve_core_does_not_import_the_testbed():
    import subprocess
    import sys

    code = ("import sys, serve_core.cli, serve_core.api; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('embedded_cluster', 'tune', 'chaos', 'loadgen', 'bench', 'dashboards')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[2])})
    assert out.stdout.strip() == "[]", out.stderr
