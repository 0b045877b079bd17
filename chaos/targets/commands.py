"""Running the commands a target issues: each in a session of its own with a timeout, and
interruptible (SIGINT) when it holds a fault, so that the fault heals as it exits."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int | None  # None: timed out
    stdout: str
    stderr: str
    took_s: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class CommandRunner(Protocol):
    def run(self, argv: list[str], timeout_s: float, interruptible: bool = False) -> CommandResult: ...

    def interrupt(self) -> None: ...


class Subprocesses:
    """Runs commands in sessions of their own (so Ctrl-C reaches only the runner, which then
    ends held faults in order). ``interrupt`` sends SIGINT to the interruptible commands
    it started: a partition or netem command heals as it exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interruptible: set[subprocess.Popen[str]] = set()

    def run(self, argv: list[str], timeout_s: float, interruptible: bool = False) -> CommandResult:
        t = time.monotonic()
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
        except FileNotFoundError:
            return CommandResult(argv, 127, "", f"{argv[0]}: no such program", time.monotonic() - t)
        if interruptible:
            with self._lock:
                self._interruptible.add(p)
        try:
            out, err = p.communicate(timeout=timeout_s)
            return CommandResult(argv, p.returncode, out, err, time.monotonic() - t)
        except subprocess.TimeoutExpired:
            out, err = _end(p)
            return CommandResult(argv, None, out, err, time.monotonic() - t)
        finally:
            with self._lock:
                self._interruptible.discard(p)

    def interrupt(self) -> None:
        with self._lock:
            running = list(self._interruptible)
        for p in running:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass


def _end(p: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGINT (so a held fault heals), then SIGKILL; the output so far."""
    for sig, wait_s in ((signal.SIGINT, 20.0), (signal.SIGKILL, 5.0)):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            break
        try:
            return p.communicate(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return "", ""
