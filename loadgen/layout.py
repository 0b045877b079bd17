"""Where a run keeps its files. The runner and the Locust processes agree through these paths.

    OUT/records.jsonl             every scheduled request, one JSON object per line (merged)
    OUT/summary.json              the Summary
    OUT/prometheus_targets.json   Prometheus file_sd targets: every Locust process's /metrics
    OUT/locust_stats.csv ...      Locust's own CSV report (from its request events)
    OUT/run/spec.json             the LoadSpec the processes read
    OUT/run/schedule.json         the whole schedule (offsets in seconds)
    OUT/run/records-I.jsonl       the records of shard I
    OUT/run/progress-I.json       shard I's counters, rewritten every second
    OUT/run/metrics-I.port        the port of shard I's metrics server
    OUT/logs/locust-*.log         each Locust process's output
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def records(self) -> Path:
        return self.root / "records.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def prometheus_targets(self) -> Path:
        return self.root / "prometheus_targets.json"

    @property
    def locust_csv_prefix(self) -> Path:
        return self.root / "locust"

    @property
    def work(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def spec(self) -> Path:
        return self.work / "spec.json"

    @property
    def schedule(self) -> Path:
        return self.work / "schedule.json"

    def records_part(self, shard: int) -> Path:
        return self.work / f"records-{shard}.jsonl"

    def progress(self, shard: int) -> Path:
        return self.work / f"progress-{shard}.json"

    def metrics_port(self, shard: int) -> Path:
        return self.work / f"metrics-{shard}.port"

    def log(self, name: str) -> Path:
        return self.logs / f"locust-{name}.log"
