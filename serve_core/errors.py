"""The exception hierarchy: every error names what happened, the values, and the fix.

Errors cross process boundaries (replica -> caller) by pickling, so each keeps its
fields in ``args`` and rebuilds from them.
"""

from __future__ import annotations


class ServeCoreError(Exception):
    """Base class for every error serve_core raises on purpose."""

    http_status = 500


class ConfigError(ServeCoreError, ValueError):
    """A user-facing option or config document is invalid."""

    http_status = 400

    def __init__(self, field: str, value: object, fix: str) -> None:
        super().__init__(field, value, fix)
        self.field, self.value, self.fix = field, value, fix

    def __str__(self) -> str:
        return f"invalid {self.field}={self.value!r}: {self.fix}"


class BackPressureError(ServeCoreError):
    """The caller's queue for a deployment is full (max_queued_requests)."""

    http_status = 503

    def __init__(self, deployment: str, queued: int, limit: int, no_replica: bool = False) -> None:
        super().__init__(deployment, queued, limit, no_replica)
        self.deployment, self.queued, self.limit, self.no_replica = deployment, queued, limit, no_replica

    def __str__(self) -> str:
        if self.no_replica:
            return (f"deployment {self.deployment!r} has no replica yet and already holds {self.queued} "
                    f"requests (the most a caller holds while it starts); retry in a moment")
        return (
            f"deployment {self.deployment!r} has {self.queued} requests queued, at its "
            f"max_queued_requests={self.limit}; retry later or raise max_queued_requests "
            "or the number of replicas"
        )


class NoReplicasError(ServeCoreError):
    """No replica became available within the caller's wait."""

    http_status = 503

    def __init__(self, deployment: str, waited_s: float) -> None:
        super().__init__(deployment, waited_s)
        self.deployment, self.waited_s = deployment, waited_s

    def __str__(self) -> str:
        return (
            f"deployment {self.deployment!r} had no running replica for {self.waited_s:.1f}s; "
            "check `serve-core status` for failed or starting replicas"
        )


class RequestTimeoutError(ServeCoreError, TimeoutError):
    """The request did not finish within its timeout."""

    http_status = 408

    def __init__(self, what: str, timeout_s: float) -> None:
        super().__init__(what, timeout_s)
        self.what, self.timeout_s = what, timeout_s

    def __str__(self) -> str:
        return f"{self.what} did not finish within {self.timeout_s}s"


class ReplicaDiedError(ServeCoreError):
    """A replica that had accepted the request died before answering.

    Raised only for requests that are not idempotent; idempotent ones are retried.
    """

    http_status = 502

    def __init__(self, deployment: str, replica: str) -> None:
        super().__init__(deployment, replica)
        self.deployment, self.replica = deployment, replica

    def __str__(self) -> str:
        return (
            f"replica {self.replica} of deployment {self.deployment!r} died while handling a "
            "non-idempotent request; it was not retried. Mark the deployment or call "
            "idempotent to have it retried."
        )


class UserCodeError(ServeCoreError):
    """User code raised; carries the original type, message and traceback text."""

    http_status = 500

    def __init__(self, deployment: str, exc_type: str, message: str, traceback: str) -> None:
        super().__init__(deployment, exc_type, message, traceback)
        self.deployment, self.exc_type = deployment, exc_type
        self.message, self.traceback = message, traceback

    def __str__(self) -> str:
        return f"{self.exc_type} in deployment {self.deployment!r}: {self.message}\n{self.traceback}"


class DeploymentFailedError(ServeCoreError, RuntimeError):
    """An application could not reach its target state."""

    def __init__(self, app: str, message: str) -> None:
        super().__init__(app, message)
        self.app, self.message = app, message

    def __str__(self) -> str:
        return f"application {self.app!r} failed to deploy: {self.message}"


class NotFoundError(ServeCoreError, KeyError):
    """An application or deployment name is unknown."""

    http_status = 404

    def __init__(self, what: str, name: str, known: list[str]) -> None:
        super().__init__(what, name, known)
        self.what, self.name, self.known = what, name, known

    def __str__(self) -> str:
        return f"no {self.what} named {self.name!r}; known: {sorted(self.known)}"


class ClusterUnavailableError(ServeCoreError, ConnectionError):
    """The Ray cluster or the serve_core controller cannot be reached."""

    def __init__(self, address: str, cause: str) -> None:
        super().__init__(address, cause)
        self.address, self.cause = address, cause

    def __str__(self) -> str:
        return (
            f"cannot reach the cluster at {self.address!r}: {self.cause}. Start one with "
            "`ray start --head` or pass --address; a cluster with token authentication "
            "(Ray's default) also needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN)"
        )


class FrameTooLargeError(ServeCoreError):
    """A request or reply is larger than the direct connections accept."""

    http_status = 413

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size, self.limit = size, limit

    def __str__(self) -> str:
        return (
            f"a message of {self.size} bytes is over the data path's max_frame_bytes={self.limit}; "
            "send less (stream a large response), or raise http_options.data_path.max_frame_bytes"
        )


def client_message(e: BaseException, debug: bool = False, limit: int = 300) -> str:
    """What an HTTP client is told of ``e``: everything when ``debug``; otherwise its first
    line, cut to ``limit`` characters. ``str(UserCodeError)`` carries the traceback of the
    failed call (nested calls' too): that belongs in the log, under the request id."""
    text = str(e)
    if debug:
        return text
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."
