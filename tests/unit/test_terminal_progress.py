"""Long commands on a terminal show a progress bar with the time left (rich); piped, they print
their quiet lines and no escape codes (serve_core/cli/terminal.py, chaos's ProgressPrinter)."""

import io
import json
import os

from chaos.cli import ProgressPrinter
from chaos.run.journal import LoadStarted, Progress, RunFinished, RunStarted
from serve_core.cli.terminal import Bar, is_terminal

DATA = os.path.join(os.path.dirname(__file__), "data")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def events():
    with open(os.path.join(DATA, "chaos_journal.json")) as f:
        exp = json.load(f)["experiment"]
    return [RunStarted(100.0, "replica_kills", exp, 7, {"kind": "embedded", "name": "x"}, "serve_core", "/tmp/run"),
            LoadStarted(101.0, ["http://10.77.0.3:8000"]),
            Progress(106.0, 5.0, {"sent": 500, "ok": 500, "failed": 0}),
            RunFinished(200.0, "passed", [], {}, None, None, [])]


def printed(stream):
    printer = ProgressPrinter(stream)
    for e in events():
        printer(e)
    return stream.getvalue()


def test_piped_the_run_prints_lines_without_escape_codes():
    out = printed(io.StringIO())
    assert "load: 500 sent, 500 ok, 0 failed" in out and "verdict: PASSED" in out and "\x1b[" not in out


def test_on_a_terminal_the_load_lines_become_a_bar_with_the_time_left(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)
    out = printed(Terminal())
    assert "\x1b[" in out and "left" in out and "load: 500 sent, 500 ok, 0 failed" in out
    assert "[    5.0s] load:" not in out  # not as a line of its own
    assert "load started on http://10.77.0.3:8000" in out and "verdict: PASSED" in out


def test_a_dumb_terminal_or_a_pipe_gets_no_bar(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    assert not is_terminal(Terminal()) and not is_terminal(io.StringIO())
    bar = Bar(io.StringIO(), 10)
    bar.print("a line")
    bar.update(5)
    bar.stop()
    assert bar.stream.getvalue() == "a line\n"
