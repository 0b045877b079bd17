"""Decoding Prometheus API answers and the error messages (no sockets: the real server is in integration)."""

import math

import pytest

from chaos.slo.prometheus import (
    Prometheus,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailable,
    Sample,
    Series,
    decode,
)

pytestmark = pytest.mark.unit


def test_decode_vector_scalar_matrix():
    v = decode({"resultType": "vector", "result": [
        {"metric": {"a": "1"}, "value": [1.0, "0.5"]},
        {"metric": {}, "value": [1.0, "NaN"]},
        {"metric": {}, "value": [1.0, "+Inf"]},
    ]})
    assert v[0] == Sample({"a": "1"}, 0.5)
    assert isinstance(v[1], Sample) and math.isnan(v[1].value)
    assert isinstance(v[2], Sample) and v[2].value == math.inf
    assert decode({"resultType": "scalar", "result": [1.0, "3"]}) == [Sample({}, 3.0)]
    assert decode({"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"], [2, "2"]]}]}) == [
        Series({}, ((1.0, 1.0), (2.0, 2.0)))]
    assert decode({"resultType": "vector", "result": []}) == []
    with pytest.raises(ValueError, match="unknown resultType"):
        decode({"resultType": "histogram", "result": []})


def test_error_names_url_query_and_fix():
    e = PrometheusUnavailable("not reachable (ConnectionError)", url="http://127.0.0.1:9", query="up", fix="start it")
    assert isinstance(e, PrometheusError)
    assert str(e) == "Prometheus at http://127.0.0.1:9: not reachable (ConnectionError) for query 'up'. Fix: start it"
    assert (e.url, e.query, e.fix) == ("http://127.0.0.1:9", "up", "start it")
    q = PrometheusQueryError("rejected", url="u", query=None, fix="f")
    assert str(q) == "Prometheus at u: rejected. Fix: f"


def test_client_arguments():
    p = Prometheus("http://127.0.0.1:9090/", timeout_s=3)
    assert p.url == "http://127.0.0.1:9090" and "9090" in repr(p)
    with pytest.raises(ValueError, match="timeout_s"):
        Prometheus(timeout_s=0)
    with pytest.raises(ValueError, match="end >= start"):
        p.query_range("up", 10, 5, 1)  # checked before any request
