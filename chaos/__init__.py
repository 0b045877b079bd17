"""Chaos experiments: declarative faults on a schedule, steady-state SLOs read from Prometheus,
and a journal of every run. Reaches serve_core only through its CLI and the cluster."""
