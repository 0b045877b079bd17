"""Traffic patterns built on the public API: ``canary`` rollouts, a ``bandit`` over variants,
sticky ``traffic_split`` for A/B tests, and resumable ``batch_scoring`` of a dataset.

They use deployments and handles as any application would; neither plane depends on them.
"""
