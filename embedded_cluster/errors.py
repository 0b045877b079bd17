"""Errors of the embedded cluster: what failed, why, and the command that fixes it."""

from __future__ import annotations

from serve_core.errors import ServeCoreError


class LocalClusterError(ServeCoreError, RuntimeError):
    """A step of `serve-core cluster` failed."""

    def __init__(self, what: str, cause: str, fix: str) -> None:
        super().__init__(what, cause, fix)
        self.what, self.cause, self.fix = what, cause, fix

    def __str__(self) -> str:
        return f"{self.what}: {self.cause}; {self.fix}"


class MissingBinaryError(LocalClusterError):
    """A program the cluster needs is not installed."""

    def __init__(self, binary: str, package: str) -> None:
        ServeCoreError.__init__(self, binary, package)  # args rebuild this class when unpickled
        self.binary, self.package = binary, package
        self.what, self.cause = f"cannot start {binary}", f"`{binary}` is not on PATH"
        self.fix = f"install it with `apt-get install {package}` (as root; scripts/install_deps.sh does it)"
