"""Prometheus metrics of one sending Locust process (client-side view of the run).

A registry of its own, so only these series are exported. Latency buckets are the server side's,
so client and server histograms can be compared bucket by bucket.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 60.0,
)


class LoadMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "loadgen_requests", "Requests sent, by route and status (HTTP code, or an error kind such as "
            "timeout, refused, reset).", ["route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "loadgen_request_latency_seconds", "Seconds from a request's intended start to its answer or failure.",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.late_starts = Counter(
            "loadgen_late_starts", "Requests sent later than the late tolerance after their intended start.",
            registry=self.registry,
        )
        self.missed_starts = Counter(
            "loadgen_missed_starts", "Intended starts not sent because the in-flight cap was reached.",
            registry=self.registry,
        )
        self.connection_retries = Counter(
            "loadgen_connection_retries", "Requests sent again to the next target after a refused connection.",
            registry=self.registry,
        )
        self.reset_retries = Counter(
            "loadgen_reset_retries", "Idempotent requests sent again to the next target after their connection "
            "ended before any answer (retry_reset).", registry=self.registry,
        )

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server (port 0: a free one); returns the bound port."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot serve /metrics on {host}:{port} ({exc.strerror}). Fix: pick another "
                          "metrics_port (worker i uses metrics_port + i), or 0 for free ports") from None
        return int(server.server_port)
