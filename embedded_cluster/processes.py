"""Starting and stopping the cluster's processes by pid, never by name.

Each process starts in a new session, so its pid is also its process group id and
stopping the group stops what it started (a `ray start --block` node stops its GCS,
raylet, agents and workers). Descendants that left the group are found through /proc
and stopped too. A pid is only signalled while its start time matches the one recorded
when we started it, so a pid reused by someone else's process is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from embedded_cluster.errors import LocalClusterError, MissingBinaryError
from embedded_cluster.state import ProcessRecord


def require_binary(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise MissingBinaryError(binary, package)
    return path


def spawn(role: str, name: str, argv: list[str], log_path: str, env: dict[str, str],
          namespace: str | None = None, cwd: str | None = None) -> ProcessRecord:
    """Start ``argv`` (inside ``namespace`` if given) in its own session, output to ``log_path``."""
    command = (["ip", "netns", "exec", namespace] if namespace else []) + argv
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True, close_fds=True,
            )
        except OSError as e:
            raise LocalClusterError(f"cannot start {name}", f"{command[0]}: {e.strerror or e}", "check that it is installed") from None
    # `ip netns exec` execs the command, so the pid stays the node's pid.
    return ProcessRecord(role, name, proc.pid, start_time(proc.pid), command, log_path, namespace)


def start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot, or 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])  # field 22 of stat(5); fields here start at field 3


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:].split()[0]


def is_ours(pid: int, started: int) -> bool:
    """Alive (not a zombie) and the very process we started."""
    if pid <= 1:
        return False
    st = _state(pid)
    if st in ("", "Z", "X"):
        return False
    return started == 0 or start_time(pid) == started


def alive(record: ProcessRecord) -> bool:
    return is_ours(record.pid, record.start_time)


def _table() -> dict[int, tuple[int, int, int, str]]:
    """pid -> (ppid, process group, start time, state) of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[19]), fields[0])
    return out


def any_stopped(pids: dict[int, int]) -> bool:
    """Whether any of ``pids`` (pid -> start time) is stopped (SIGSTOP: state T)."""
    return any(info[3] == "T" for pid, info in _table().items() if pid in pids and info[2] == pids[pid])


def descendants(pid: int, table: dict[int, tuple[int, int, int, str]] | None = None) -> list[int]:
    table = _table() if table is None else table
    children: dict[int, list[int]] = {}
    for child, info in table.items():
        children.setdefault(info[0], []).append(child)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def find_children(pid: int, names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Descendants of ``pid`` whose command name is one of ``names`` (first match each),
    as {name: {"pid", "start_time"}}."""
    found: dict[str, dict[str, int]] = {}
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in names and comm not in found:
            found[comm] = {"pid": child, "start_time": start_time(child)}
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(record: ProcessRecord, timeout_s: float = 15.0) -> bool:
    """Stop one recorded process with everything it started; see ``stop_pids``."""
    return stop_pids({record.pid: record.start_time}, {}, timeout_s)


def collect(pids: dict[int, int]) -> dict[int, int]:
    """The processes to stop for ``pids`` (pid -> recorded start time, 0 if unknown):
    each that is still ours, the members of its process group (a group id cannot be
    reused while a member lives, so they are ours even when the leader is gone) and all
    their descendants. Returns pid -> start time."""
    table = _table()
    out: dict[int, int] = {}
    for pid, started in pids.items():
        info = table.get(pid)
        if info is not None and started and info[2] != started:
            continue  # the pid now belongs to someone else's process
        if info is not None:
            out[pid] = info[2]
        for other, oinfo in table.items():
            if oinfo[1] == pid:
                out[other] = oinfo[2]
    for pid in list(out):
        for d in descendants(pid, table):
            out[d] = table[d][2] if d in table else 0
    return {p: t for p, t in out.items() if p > 1 and p != os.getpid()}


def stop_pids(leaders: dict[int, int], others: dict[int, int] | None = None, timeout_s: float = 15.0) -> bool:
    """Stop ``leaders`` (pid -> start time) and everything that belongs to them (see
    ``collect``), plus ``others``. First SIGTERM to the leaders alone, so that each stops
    its children in its own order (a `ray start --block` whose GCS gets SIGTERM at the same
    time as itself can hang); after ``timeout_s`` SIGTERM to everything left, and SIGKILL
    3 s later. Returns True if something was running."""
    targets = {p: t for p, t in collect({**(others or {}), **leaders}).items() if is_ours(p, t)}
    if not targets:
        return False

    def done() -> bool:
        return not any(is_ours(p, t) for p, t in targets.items())

    live_leaders = [p for p, t in leaders.items() if p in targets]
    for p in live_leaders:
        _signal(p, signal.SIGTERM)
    if live_leaders and wait_until(done, timeout_s, 0.1):
        return True
    for p, t in targets.items():
        if is_ours(p, t):
            _signal(p, signal.SIGTERM)
    if wait_until(done, 3.0, 0.1):
        return True
    for p, t in targets.items():
        if is_ours(p, t):
            _signal(p, signal.SIGKILL)
    wait_until(done, 5.0, 0.1)
    return True


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def port_open(address: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        socket.create_connection((address, port), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return "(no log)"
