"""Batch scoring's pure parts: reading inputs, resuming from a cut-short output, and the
scoring loop against a fake handle (the real deployment is in tests/integration)."""

import asyncio
import json

import pytest

from serve_core.errors import ConfigError, UserCodeError
from serve_core.patterns import batch_scoring as bs


class FakeHandle:
    def __init__(self, fail_first=0):
        self.calls, self.fail_first = [], fail_first

    def options(self, **kw):
        return self

    async def remote(self, items):
        self.calls.append([it["x"] for it in items])
        if len(self.calls) <= self.fail_first:
            raise UserCodeError("Scorer", "ValueError", "model not ready", "")
        return [it["x"] * 10 for it in items]


def items(n):
    return [(f"k{i}", {"x": i}) for i in range(n)]


def test_resumes_from_what_is_written_and_drops_a_cut_short_last_line(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": "k0", "result": 0}) + "\n" + json.dumps({"id": "k1", "result": 10}) + "\n" + '{"id": "k2", "res')
    assert bs.finished_keys(out) == {"k0", "k1"}
    assert out.read_text().count("\n") == 2 and out.read_text().endswith("\n")
    h = FakeHandle()
    s = asyncio.run(bs.score_async(items(7), h, out, batch_size=2, progress=False))
    assert (s.total, s.skipped, s.scored, s.failed, s.complete) == (7, 2, 5, 0, True)
    assert sorted(x for c in h.calls for x in c) == [2, 3, 4, 5, 6]  # k0 and k1 not scored again
    got = {json.loads(x)["id"]: json.loads(x)["result"] for x in out.read_text().splitlines()}
    assert got == {f"k{i}": i * 10 for i in range(7)}


def test_a_failing_batch_is_retried_then_kept_out_of_the_results(tmp_path):
    out = tmp_path / "out.jsonl"
    s = asyncio.run(bs.score_async(items(3), FakeHandle(fail_first=1), out, batch_size=3, retries=1, progress=False))
    assert s.scored == 3 and not (tmp_path / "out.jsonl.errors.jsonl").exists()  # the retry worked
    s = asyncio.run(bs.score_async(items(6), FakeHandle(fail_first=99), out, batch_size=3, retries=0, progress=False))
    assert (s.skipped, s.failed, s.complete) == (3, 3, False)
    errors = [json.loads(x) for x in (tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()]
    assert [e["id"] for e in errors] == ["k3", "k4", "k5"] and "model not ready" in errors[0]["error"]


def test_inputs_and_settings_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="no such file or directory"):
        bs.input_files(str(tmp_path / "nope.jsonl"))
    with pytest.raises(ConfigError, match="no \\*.jsonl files"):
        bs.input_files(str(tmp_path))
    bad = tmp_path / "a.jsonl"
    bad.write_text('{"id": 1}\n\n{oops\n')
    with pytest.raises(ConfigError) as e:
        list(bs.read_jsonl([bad]))
    assert e.value.field == f"{bad}:3" and "one JSON value per line" in e.value.fix
    bad.write_text('{"id": 7, "x": 1}\n[1, 2]\n')
    assert [k for k, _ in bs.read_jsonl([bad])] == ["7", "a.jsonl:2"]
    with pytest.raises(ConfigError, match="batch size"):
        asyncio.run(bs.score_async(items(1), FakeHandle(), tmp_path / "o.jsonl", batch_size=0))
