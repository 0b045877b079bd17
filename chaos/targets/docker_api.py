"""The Docker seam of the compose target: ``Docker``, the few calls ``ComposeCluster`` makes
(list a project's containers, exec, kill, start, pause, logs, and the short-lived helper
containers that apply network faults), and ``DockerAPI``, which makes them with the ``docker``
package over /var/run/docker.sock. Unit tests pass a fake ``Docker`` of their own."""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.targets.base import TargetError
from chaos.targets.compose_containers import HELPER_LABEL, PROJECT_LABEL, Container, container_from_attrs


@dataclass
class ExecResult:
    code: int | None  # None: timed out
    stdout: str
    stderr: str


@dataclass
class HelperState:
    """A network-fault helper container as last seen."""

    running: bool
    code: int | None  # its exit code once it exited
    stdout: str
    stderr: str


class Docker(Protocol):
    """What the target asks of Docker (``DockerAPI``; tests use a fake)."""

    def containers(self, project: str) -> list[Container]: ...

    def exec(self, container: Container, argv: list[str], timeout_s: float) -> ExecResult: ...

    def kill(self, container: Container) -> None: ...

    def start(self, container: Container) -> None: ...

    def pause(self, container: Container) -> None: ...

    def unpause(self, container: Container) -> None: ...

    def logs_since(self, container: Container, since: float) -> str: ...

    def run_helper(self, target: Container, script: str) -> str:
        """Start a network-fault helper running ``sh -c script`` in ``target``'s network namespace
        (root, NET_ADMIN); its id."""
        ...

    def helper_state(self, helper: str) -> HelperState: ...

    def stop_helper(self, helper: str) -> None:
        """SIGTERM to a helper (a held fault's helper heals and exits); nothing if it has exited."""
        ...

    def remove_helper(self, helper: str) -> None: ...

    def helpers_of(self, target: Container) -> list[str]:
        """The helpers (running or exited, not removed) acting in ``target``."""
        ...


class DockerAPI:
    """``Docker`` with the docker package (imported, and the socket opened, on first use)."""

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import docker
                except ImportError:
                    raise TargetError("cannot drive docker compose", "the docker package is missing",
                                      "pip install docker (the project image has it)") from None
                try:
                    self._client = docker.from_env(timeout=120)
                    self._client.ping()
                except Exception as e:
                    self._client = None
                    raise TargetError("cannot reach the Docker engine", f"{type(e).__name__}: {e}",
                                      "start dockerd (bash compose/dockerd.sh start) or mount /var/run/docker.sock") from None
            return self._client

    def containers(self, project: str) -> list[Container]:
        found = self.client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
        return [container_from_attrs(c.attrs, project) for c in found]

    def exec(self, container: Container, argv: list[str], timeout_s: float) -> ExecResult:
        wrapped = ["timeout", "-s", "KILL", f"{max(1, int(timeout_s))}", *argv]
        try:
            code, (out, err) = self.client.containers.get(container.id).exec_run(wrapped, demux=True, workdir="/app")
        except Exception as e:
            return ExecResult(125, "", f"docker exec failed: {type(e).__name__}: {e}")
        text = (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
        return ExecResult(None if code in (124, 137) else code, *text)

    def kill(self, container: Container) -> None:
        self.client.containers.get(container.id).kill()

    def start(self, container: Container) -> None:
        self.client.containers.get(container.id).start()

    def pause(self, container: Container) -> None:
        self.client.containers.get(container.id).pause()

    def unpause(self, container: Container) -> None:
        self.client.containers.get(container.id).unpause()

    def logs_since(self, container: Container, since: float) -> str:
        raw = self.client.containers.get(container.id).logs(since=int(since), stdout=True, stderr=True)
        return bytes(raw).decode(errors="replace")

    def run_helper(self, target: Container, script: str) -> str:
        image = os.environ.get("SERVE_CORE_NET_HELPER_IMAGE") or target.image
        if not image:
            raise TargetError(f"cannot start a network-fault helper for {target.name}", "its image is unknown",
                              "set SERVE_CORE_NET_HELPER_IMAGE to an image with sh, tc and iptables")
        helper = self.client.containers.run(
            image, ["-c", script], entrypoint=["/bin/sh"], detach=True, user="0:0",
            network_mode=f"container:{target.id}", cap_drop=["ALL"], cap_add=["NET_ADMIN", "NET_RAW"],
            labels={HELPER_LABEL: target.id}, name=f"{target.name}-netfault-{uuid.uuid4().hex[:8]}")
        return str(helper.id)

    def helper_state(self, helper: str) -> HelperState:
        c = self.client.containers.get(helper)
        state = c.attrs.get("State") or {}
        running = bool(state.get("Running"))
        out = bytes(c.logs(stdout=True, stderr=False)).decode(errors="replace")
        err = bytes(c.logs(stdout=False, stderr=True)).decode(errors="replace")
        return HelperState(running, None if running else int(state.get("ExitCode", 125)), out, err)

    def stop_helper(self, helper: str) -> None:
        try:
            self.client.containers.get(helper).kill(signal="SIGTERM")
        except Exception as e:  # exited or removed already: fine
            if not any(w in str(e) for w in ("is not running", "No such container", "Not Found", "404")):
                raise

    def remove_helper(self, helper: str) -> None:
        try:
            self.client.containers.get(helper).remove(force=True)
        except Exception as e:  # removed already (a heal and the fault's own end race): fine
            if not any(w in str(e) for w in ("No such container", "Not Found", "404", "already in progress")):
                raise

    def helpers_of(self, target: Container) -> list[str]:
        found = self.client.containers.list(all=True, filters={"label": f"{HELPER_LABEL}={target.id}"})
        return [str(c.id) for c in found]


# -- the target ---------------------------------------------------------------------------------


