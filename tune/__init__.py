"""Tune autoscaling settings against SLOs: a sweep in the simulator, confirmed by real runs."""
