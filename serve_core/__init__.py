"""serve_core: a Ray Serve-compatible model server with a direct data path.

``import serve_core as serve`` in place of ``from ray import serve``.
"""

from serve_core.api import (
    Application,
    Deployment,
    delete,
    deployment,
    get_app_handle,
    get_deployment_handle,
    ingress,
    run,
    shutdown,
    start,
    status,
)
from serve_core.batching import batch
from serve_core.config import AutoscalingConfig, HTTPOptions
from serve_core.context import get_multiplexed_model_id, get_replica_context
from serve_core.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator

__all__ = [
    "Application", "AutoscalingConfig", "Deployment", "DeploymentHandle", "DeploymentResponse",
    "DeploymentResponseGenerator", "HTTPOptions", "batch", "delete", "deployment", "get_app_handle",
    "get_deployment_handle", "get_multiplexed_model_id", "get_replica_context", "ingress", "run",
    "shutdown", "start", "status",
]
__version__ = "0.1.0"
