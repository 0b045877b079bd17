"""Benchmarks for serve_core vs Ray Serve. See bench/README.md."""
