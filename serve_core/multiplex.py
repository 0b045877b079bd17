"""``ray.serve.multiplex``'s names, where Ray Serve keeps them: a public facade.

The implementation is the data path's (``serve_core.data.multiplex``): a per-replica LRU
of loaded models, reported to the controller so callers route to a replica that has one.
"""

from serve_core.data.multiplex import multiplexed

__all__ = ["multiplexed"]
