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


def test_chaos_load_and_tune_hand_their_arguments_to_their_own_command_lines(capsys):
    import chaos
    import loadgen
    import tune

    groups = {"chaos": chaos.add_serve_core_commands, "load": loadgen.add_serve_core_commands,
              "tune": tune.add_serve_core_commands}
    assert cli.main(["chaos", "list"], extra=groups) == 0
    assert "chaos/experiments/replica_kills.yaml" in capsys.readouterr().out
    for group, words in (("chaos", ["validate", "--help"]), ("load", ["--help"]), ("tune", ["run", "--help"])):
        with pytest.raises(SystemExit) as done:
            cli.main([group, *words], extra=groups)
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: serve-core {group} ")  # its help, under serve-core's name
    with pytest.raises(SystemExit) as done:
        cli.main(["status", "--no-such-flag"], extra=groups)
    assert done.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_the_testbed_groups_import_nothing_heavy_until_run():
    import subprocess
    import sys

    code = ("import sys, serve_core.cli as c; c.parser(); "
            "print(sorted(m for m in ('chaos.cli', 'loadgen.cli', 'tune.__main__', 'locust', 'gevent') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
