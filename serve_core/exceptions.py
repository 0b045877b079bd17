"""``ray.serve.exceptions``'s names for serve_core's errors.

``RayServeException`` is serve_core's base error, so ``except RayServeException`` catches
every error serve_core raises on purpose. The rest map Ray Serve's meanings onto
serve_core's classes, which keep their own fields and messages (see ``serve_core.errors``).
"""

from __future__ import annotations

from serve_core.errors import BackPressureError, NoReplicasError, ReplicaDiedError, ServeCoreError

RayServeException = ServeCoreError
DeploymentUnavailableError = NoReplicasError  # no replica can take the request
ReplicaUnavailableError = ReplicaDiedError  # the replica handling it went away


class RequestCancelledError(ServeCoreError):
    """Awaiting (or ``.result()`` of) a response cancelled with ``response.cancel()``, or
    iterating a cancelled stream."""

    def __init__(self, request_id: str | None = None) -> None:
        super().__init__(request_id)
        self.request_id = request_id

    def __str__(self) -> str:
        return f"request {self.request_id!r} was cancelled" if self.request_id else "the request was cancelled"


__all__ = [
    "BackPressureError", "DeploymentUnavailableError", "RayServeException", "ReplicaUnavailableError",
    "RequestCancelledError",
]
