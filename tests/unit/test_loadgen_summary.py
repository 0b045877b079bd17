"""Summary math from records, record files, and live progress."""

import json

import pytest

from loadgen.progress import Phase, Progress, ShardProgress
from loadgen.records import Record, RecordWriter, cause, merge_parts, read_records
from loadgen.summary import latency_stats, percentile, summarize

pytestmark = pytest.mark.unit


def rec(seq, status=200, error=None, latency=0.01, late=False, retried=False, intended=None, started=None):
    intended = 1000.0 + seq * 0.01 if intended is None else intended
    return {"seq": seq, "shard": 0, "intended": intended,
            "started": None if error == "missed" else (started if started is not None else intended),
            "target": None if error == "missed" else "http://a:1", "route": "/", "method": "GET",
            "status": status, "error": error, "latency_s": None if error == "missed" else latency,
            "retried": retried, "late": late, "ok": status is not None and 200 <= status < 300}


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0], 50) == 1
    assert percentile([1.0, 2.0], 51) == 2
    assert percentile([], 50) is None
    assert percentile([float(v) for v in range(1, 1001)], 99.9) == 999  # not skipped by float rounding


def test_latency_stats_sorts_and_averages():
    stats = latency_stats([0.3, 0.1, 0.2, 0.4])
    assert (stats.count, stats.p50, stats.p90, stats.max) == (4, 0.2, 0.4, 0.4)
    assert stats.mean == pytest.approx(0.25)
    assert latency_stats([]).p50 is None


def test_summarize_counts_every_outcome():
    records = [
        rec(0), rec(1, late=True), rec(2, retried=True),
        rec(3, status=503, latency=0.02), rec(4, status=None, error="timeout", latency=5.0),
        rec(5, status=None, error="refused", retried=True, latency=0.001), rec(6, status=None, error="missed"),
        rec(7, status=404), rec(8, status=None, error="cancelled", latency=9.0),
    ]
    s = summarize(records, scheduled=11, duration_s=0.11)
    assert (s.scheduled, s.sent, s.ok, s.failed, s.cancelled) == (11, 8, 3, 4, 1)
    assert s.failed_by_cause == {"404": 1, "503": 1, "refused": 1, "timeout": 1}
    assert (s.retried, s.late_starts, s.missed_starts, s.not_started) == (2, 1, 1, 2)
    assert not s.complete  # two scheduled starts have no record
    assert s.latency_s.count == 7 and s.latency_s.max == 5.0  # failures count (not the cancelled one)
    assert s.ok_latency_s.count == 3 and s.ok_latency_s.max == 0.01
    assert s.intended_rate_per_s == pytest.approx(100.0)
    assert s.finished_at == pytest.approx(1000.04 + 5.0)
    assert s.started_at == 1000.0


def test_summarize_complete_run_and_rates():
    records = [rec(k, started=1000.0 + k * 0.02) for k in range(11)]  # sent at half the intended pace
    s = summarize(records, scheduled=11, duration_s=0.11, complete=True, route="/x", workers=2)
    assert s.complete and s.not_started == 0 and s.failed == 0
    assert s.achieved_rate_per_s == pytest.approx(50.0)
    assert (s.route, s.workers) == ("/x", 2)


def test_summarize_respects_caller_incomplete_flag_and_empty_runs():
    assert not summarize([rec(0)], scheduled=1, complete=False).complete
    empty = summarize([], scheduled=3)
    assert (empty.sent, empty.not_started, empty.achieved_rate_per_s, empty.latency_s.count) == (0, 3, None, 0)


def test_cause():
    assert cause(rec(0)) is None
    assert cause(rec(0, status=500)) == "500"
    assert cause(rec(0, status=None, error="reset")) == "reset"


def test_record_writer_and_merge(tmp_path):
    a, b = tmp_path / "records-0.jsonl", tmp_path / "records-1.jsonl"
    for path, shard, seqs in ((a, 0, [4, 0, 2]), (b, 1, [3, 1])):
        writer = RecordWriter(path)
        for seq in seqs:
            writer.write(Record(seq, shard, 1.0 + seq, 1.0 + seq, "http://t:1", "/", "GET", 200, None, 0.01))
        writer.close()
        writer.write(Record(99, shard, 0, 0, None, "/", "GET", None, "cancelled", 0.0))  # after close: dropped
    with open(b, "a") as fh:
        fh.write('{"seq": 5, "shard"')  # torn last line of a killed process
    merged = merge_parts([a, b, tmp_path / "records-2.jsonl"], tmp_path / "records.jsonl")
    assert [r["seq"] for r in merged] == [0, 1, 2, 3, 4]
    rows = list(read_records(tmp_path / "records.jsonl"))
    assert rows == merged
    assert rows[0]["ok"] is True and rows[1]["shard"] == 1
    assert set(rows[0]) == {"seq", "shard", "intended", "started", "target", "route", "method", "status", "error",
                            "latency_s", "retried", "late", "retry", "ok"}


def test_record_ok_is_2xx():
    base = dict(seq=0, shard=0, intended=0.0, started=0.0, target="t", route="/", method="GET", error=None,
                latency_s=0.1)
    assert Record(status=204, **base).ok
    assert not Record(status=302, **base).ok
    assert json.loads(Record(status=None, **{**base, "error": "timeout"}).to_json())["ok"] is False


def test_progress_combines_shards(tmp_path):
    s0 = ShardProgress(shard=0, phase=Phase.LINGERING, scheduled=5, started=5, completed=5, ok=4, failed=1, t0=10.0)
    s1 = ShardProgress(shard=1, phase=Phase.RUNNING, scheduled=5, started=3, completed=2, ok=2, in_flight=1,
                       late=1, t0=10.0)
    s0.write(tmp_path / "p0.json")
    assert ShardProgress.read(tmp_path / "p0.json") == s0
    assert ShardProgress.read(tmp_path / "missing.json") is None
    p = Progress.combine([s0, s1], workers=2, scheduled=10, now=12.5)
    assert (p.phase, p.started, p.completed, p.ok, p.failed, p.in_flight, p.late) == (Phase.RUNNING, 8, 7, 6, 1, 1, 1)
    assert p.elapsed_s == 2.5
    assert "sent 8/10" in p.line()
    assert Progress.combine([s0, None], workers=2, scheduled=10).phase == Phase.STARTING
