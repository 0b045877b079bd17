"""Redis for GCS fault tolerance: the GCS keeps its tables there, so a restarted GCS
(same Redis, same token) finds the cluster as it was.

It listens on the host side only (the bridge address or loopback), needs a password,
and persists (append-only file) into the state directory.
"""

from __future__ import annotations

import os
import socket

from embedded_cluster import processes
from embedded_cluster.errors import LocalClusterError
from embedded_cluster.state import ClusterState, ProcessRecord, write_atomic


def config_text(bind: str, port: int, password: str, data_dir: str) -> str:
    """A redis.conf; the password is here rather than on a command line that `ps` shows."""
    return "\n".join([
        f"bind {bind}",
        f"port {port}",
        "protected-mode yes",
        f"requirepass {password}",
        f"dir {data_dir}",
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        "daemonize no",
        "loglevel notice",
        "logfile \"\"",
        "",
    ])


def start(state: ClusterState, env: dict[str, str]) -> ProcessRecord:
    binary = processes.require_binary("redis-server", "redis-server")
    plan = state.plan
    data_dir = state.sub("redis")
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    conf = state.sub("redis", "redis.conf")
    write_atomic(conf, config_text(plan.host_address, plan.ports.redis, state.redis_password, data_dir), mode=0o600)
    record = processes.spawn("redis", "redis", [binary, conf], os.path.join(state.logs_dir, "redis.log"), env)
    state.add(record)  # recorded before waiting, so a failed start is still stopped by `down`
    state.save()
    ok = processes.wait_until(
        lambda: not processes.alive(record) or ping(plan.host_address, plan.ports.redis, state.redis_password) == "PONG", 20)
    if not ok or not processes.alive(record):
        raise LocalClusterError(
            f"redis-server did not start on {plan.redis_address}", processes.tail(record.log, 8),
            f"free port {plan.ports.redis} or pick another with --redis-port",
        )
    return record


def ping(host: str, port: int, password: str, timeout_s: float = 2.0) -> str:
    """AUTH then PING over RESP; the server's answer ("PONG" when all is well) or the error."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(_command("AUTH", password) + _command("PING"))
            replies = _read_lines(s, 2)
    except OSError as e:
        return f"unreachable: {e.strerror or e}"
    if len(replies) < 2:
        return f"no answer: {replies}"
    if replies[0] != "+OK":
        return f"AUTH refused: {replies[0]}"
    return replies[1].lstrip("+")


def _command(*parts: str) -> bytes:
    out = f"*{len(parts)}\r\n".encode()
    for p in parts:
        b = p.encode()
        out += f"${len(b)}\r\n".encode() + b + b"\r\n"
    return out


def _read_lines(s: socket.socket, n: int) -> list[str]:
    buf = b""
    while buf.count(b"\r\n") < n:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return [line.decode(errors="replace") for line in buf.split(b"\r\n")[:n] if line]
