"""``ray.serve.batching``'s names, where Ray Serve keeps them: a public facade.

The implementation is the data path's (``serve_core.data.batching``): requests on one
replica gathered into batches.
"""

from serve_core.data.batching import BatchSizeError, batch

__all__ = ["BatchSizeError", "batch"]
