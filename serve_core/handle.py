"""``ray.serve.handle``'s names, where Ray Serve keeps them: a public facade.

The implementation is the data path's (``serve_core.data.handle``): a handle calls
replicas over direct connections, through the caller's router.
"""

from serve_core.data.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator
from serve_core.exceptions import RayServeException, RequestCancelledError

__all__ = [
    "DeploymentHandle", "DeploymentResponse", "DeploymentResponseGenerator", "RayServeException",
    "RequestCancelledError",
]
