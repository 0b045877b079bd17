"""Cross-check math: client records against Prometheus figures."""

import dataclasses
import json
import math

import pytest

from chaos.slo.crosscheck import (
    FIELDS,
    ClientFigures,
    ClientRecord,
    RecordFields,
    ServerFigures,
    bucket_of,
    client_figures,
    compare,
    parse_record,
    percentile_nearest_rank,
    read_records,
)
from chaos.slo.queries import BACKENDS

pytestmark = pytest.mark.unit

BOUNDS = BACKENDS["serve_core"].bucket_bounds_ms


def rec(t, status=200, latency=0.002, error=None, route="/api"):
    return ClientRecord(intended=t, route=route, status=status, error=error, latency_s=latency)


def test_nearest_rank():
    assert percentile_nearest_rank([], 99) is None
    assert percentile_nearest_rank([5.0], 99) == 5.0
    values = list(range(1, 101))
    assert percentile_nearest_rank(values, 99) == 99
    assert percentile_nearest_rank(values, 50) == 50
    assert percentile_nearest_rank(list(range(1, 1001)), 99.9) == 999


def test_client_figures_window_route_and_causes():
    records = (
        [rec(10 + i / 100) for i in range(95)]
        + [rec(11, status=503, latency=0.001)] * 2
        + [rec(11.5, status=None, error="refused", latency=None)] * 2
        + [rec(11.6, status=None, error=None, latency=None)]
        + [rec(9.99), rec(20.0), rec(12, route="/other")]  # outside the window or another route
        + [rec(12, status=None, error="missed", latency=None), rec(19, status=None, error="cancelled", latency=5.0)]
    )
    c = client_figures(records, 10, 20, route="/api")
    assert (c.total, c.good, c.answered, c.unanswered) == (100, 95, 97, 3)
    assert c.availability == pytest.approx(0.95)
    assert c.failures == {"503": 2, "no_answer": 1, "refused": 2}
    assert c.not_sent == {"cancelled": 1, "missed": 1}  # never judged: not in the total
    assert c.p99_ms == pytest.approx(2.0)  # over the 97 answered
    assert client_figures(records, 10, 20).total == 101
    timed = [rec(i, latency=0.001) for i in range(97)] + [rec(1, status=None, error="timeout", latency=5.0)] * 3
    assert client_figures(timed, 0, 100).p99_ms == pytest.approx(1.0)
    assert client_figures(timed, 0, 100, answered_only=False).p99_ms == pytest.approx(5000.0)  # as loadgen's histogram
    empty = client_figures(records, 100, 200)
    assert empty.availability is None and empty.p99_ms is None


def test_bucket_of():
    assert bucket_of(0.3, BOUNDS) == (0, (0.0, 0.5))
    assert bucket_of(1.0, BOUNDS) == (1, (0.5, 1.0))  # upper bounds are inclusive, like le
    assert bucket_of(1.0001, BOUNDS) == (2, (1.0, 2.0))
    assert bucket_of(125.0, BOUNDS)[1] == (100.0, 150.0)
    assert bucket_of(1e9, BOUNDS) == (len(BOUNDS), (60000.0, math.inf))


def server(total, availability, p99):
    return ServerFigures(total=total, availability=availability, p99_ms=p99, queries={})


def client(total, good, p99, failures=None, answered=None):
    return ClientFigures(total=total, good=good, availability=good / total, answered=answered if answered is not None else total,
                         p99_ms=p99, failures=failures or {})


def test_compare_within_tolerance():
    c = compare(client(10000, 9990, 12.0), server(10000, 0.9995, 13.9), BOUNDS)
    assert c.availability_diff_pp == pytest.approx(-0.05)
    assert c.availability_ok is True
    assert c.p99_client_bucket_ms == (10.0, 15.0) and c.p99_server_bucket_ms == (10.0, 15.0)
    assert c.p99_bucket_distance == 0 and c.p99_ok is True
    assert c.p99_relative_diff == pytest.approx((12.0 - 13.9) / 13.9)
    assert c.unseen_by_server == 0 and c.ok is True
    assert "-0.050 pp (within 0.1 pp)" in c.summary


def test_compare_outside_tolerance_and_the_unseen():
    c = compare(client(10000, 9700, 40.0, failures={"refused": 250, "503": 50}, answered=9750),
                server(9750, 0.99487, 14.0), BOUNDS)
    assert c.availability_diff_pp == pytest.approx((0.97 - 0.99487) * 100)
    assert c.availability_ok is False
    assert c.p99_client_bucket_ms == (30.0, 50.0) and c.p99_server_bucket_ms == (10.0, 15.0)
    assert c.p99_bucket_distance == 3 and c.p99_ok is False
    assert c.unseen_by_server == 250 and c.ok is False
    plain = dataclasses.asdict(c)
    assert plain["ok"] is False and plain["client"]["unanswered"] == 250
    assert "250 request(s) got no answer at all" in c.summary and "503=50, refused=250" in c.summary
    assert "+250 unseen by the server" in c.summary


def test_compare_adjacent_bucket_is_within_one():
    c = compare(client(100, 100, 16.0), server(100, 1.0, 14.0), BOUNDS)
    assert c.p99_bucket_distance == 1 and c.p99_ok is True
    assert compare(client(100, 100, 16.0), server(100, 1.0, 14.0), BOUNDS, p99_bucket_tolerance=0).p99_ok is False
    strict = compare(client(10000, 9990, 1.0), server(10000, 0.9995, 1.0), BOUNDS, availability_tolerance_pp=0.01)
    assert strict.availability_ok is False


def test_compare_with_no_data_on_one_side():
    c = compare(client(100, 100, 1.0), server(None, None, None), BOUNDS)
    assert c.availability_ok is None and c.p99_ok is None and c.ok is None and c.unseen_by_server is None
    assert "no data on one side" in c.summary


def test_parse_record_and_field_names():
    r = parse_record({"intended": 1.5, "route": "/a", "status": "503", "error": None, "latency_s": 0.1})
    assert r == ClientRecord(1.5, "/a", 503, None, 0.1) and r.cause == "503" and not r.good
    assert parse_record({"intended": 1, "status": None, "error": "timeout"}).cause == "timeout"
    renamed = RecordFields(intended="t", status="code")
    assert parse_record({"t": 2, "code": 200}, renamed).good
    with pytest.raises(ValueError, match="needs a numeric 'intended'.*RecordFields"):
        parse_record({"status": 200})
    with pytest.raises(ValueError, match="'status' must be an HTTP status or null"):
        parse_record({"intended": 1, "status": "refused"})


def test_read_records(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps({FIELDS.intended: 1, FIELDS.status: 200, FIELDS.latency_s: 0.01}) + "\n\n{oops\n")
    with pytest.raises(ValueError, match=r"r.jsonl:3: not JSON"):
        read_records(p)
    p.write_text(json.dumps({FIELDS.intended: 1, FIELDS.status: 200, FIELDS.latency_s: 0.01}) + "\n")
    assert read_records(p) == [ClientRecord(1.0, None, 200, None, 0.01)]
