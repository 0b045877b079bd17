"""Run options and the CLI up to the point where a run would start (no sockets, no Locust)."""

import subprocess
import sys

import pytest

from loadgen.cli import format_summary, main
from loadgen.errors import LocustMissing, ProfileError, SpecError, TraceError
from loadgen.profile import Constant
from loadgen.runner import LoadRun, make_spec
from loadgen.spec import LoadSpec
from loadgen.summary import summarize

pytestmark = pytest.mark.unit

PROFILE = {"kind": "constant", "rate": 10, "duration_s": 1}


def test_spec_defaults_and_normalisation():
    spec = make_spec(PROFILE, ["http://127.0.0.1:8000/", "http://10.0.0.2:8000/app"], method="post")
    assert spec.targets == ["http://127.0.0.1:8000", "http://10.0.0.2:8000/app"]
    assert spec.method == "POST"
    assert (spec.timeout_s, spec.max_in_flight, spec.late_tolerance_s, spec.workers, spec.metrics_port) == \
        (5.0, 1000, 0.05, 1, 0)
    assert LoadSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize("targets,options,expected", [
    (["127.0.0.1:8000"], {}, "must look like http://HOST:PORT"),
    (["https://a:443"], {}, "plain HTTP"),
    (["http://a"], {}, "explicit port"),
    ([], {}, "targets: List should have at least 1 item"),
    (["http://a:1"], {"route": "x"}, "route 'x' must start with '/'"),
    (["http://a:1"], {"method": "FETCH"}, "method 'FETCH' is not one of"),
    (["http://a:1"], {"workers": 0}, "workers: Input should be greater than or equal to 1"),
    (["http://a:1"], {"timeout_s": 0}, "timeout_s: Input should be greater than 0"),
    (["http://a:1"], {"metrics_port": 70000}, "metrics_port"),
])
def test_bad_options_are_listed(targets, options, expected):
    with pytest.raises(SpecError, match="load run options are not valid") as err:
        make_spec(PROFILE, targets, **options)
    assert expected in str(err.value)


def test_load_run_validates_at_construction_without_starting_anything(tmp_path):
    with pytest.raises(ProfileError, match="rate"):
        LoadRun({"kind": "constant", "rate": -1, "duration_s": 1}, ["http://a:1"], out_dir=tmp_path)
    run = LoadRun(Constant(rate=5, duration_s=2), ["http://a:1"], payload={"x": 1}, out_dir=tmp_path)
    assert run.spec.payloads == [{"x": 1}]
    assert LoadRun(PROFILE, ["http://a:1"], payload=None, out_dir=tmp_path).spec.payloads == [None]
    assert LoadRun(PROFILE, ["http://a:1"], out_dir=tmp_path).spec.payloads == []
    assert not run.running
    with pytest.raises(RuntimeError, match="start"):
        run.wait()


def test_missing_locust_is_reported_before_anything_starts(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "locust" else real(name, *a))
    with pytest.raises(LocustMissing, match=r"pip install -e '\.\[testbed\]'"):
        LoadRun(PROFILE, ["http://a:1"], out_dir=tmp_path / "out").start()
    with pytest.raises(LocustMissing):
        LoadRun(PROFILE, ["http://a:1"], out_dir=tmp_path / "out", python=str(tmp_path / "no-python")).start()
    assert not (tmp_path / "out").exists()


def test_bad_trace_is_reported_at_start(tmp_path):
    run = LoadRun({"kind": "trace", "path": str(tmp_path / "t.txt")}, ["http://a:1"], out_dir=tmp_path / "out")
    with pytest.raises(TraceError, match="does not exist"):
        run.start()


def test_from_spec_round_trips(tmp_path):
    spec = make_spec(PROFILE, ["http://a:1"], route="/x", workers=3, linger_s=7)
    assert LoadRun.from_spec(spec, tmp_path).spec == spec


def test_cli_schedule_preview(capsys):
    assert main(["schedule", "--rate", "100", "--duration", "12", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "1200 requests over 12 s" in out and "worker 1: 600 requests" in out


@pytest.mark.parametrize("argv,expected", [
    (["run", "--target", "http://a:1"], "give --profile FILE, or --rate R with --duration S"),
    (["run", "--target", "http://a:1", "--rate", "0", "--duration", "3"], "must both be positive"),
    (["run", "--target", "a:1", "--rate", "5", "--duration", "3"], "must look like http://HOST:PORT"),
    (["run", "--target", "http://a:1", "--profile", "nope.yaml"], "cannot read the file"),
    (["run", "--target", "http://a:1", "--rate", "5", "--duration", "3", "--payload-from", "example:x"],
     "no example payload 'x'"),
    (["run", "--target", "http://a:1", "--rate", "5", "--duration", "3", "--header", "nocolon"],
     "must look like 'Name: value'"),
])
def test_cli_input_errors_exit_2_with_the_fix(capsys, argv, expected):
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_cli_payload_file_errors(tmp_path, capsys):
    bad = tmp_path / "body.json"
    bad.write_text("{nope")
    assert main(["run", "--target", "http://a:1", "--rate", "5", "--duration", "1", "--payload", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err


def test_format_summary_mentions_causes_and_incomplete():
    records = [{"seq": 0, "intended": 1.0, "started": 1.0, "status": None, "error": "timeout", "latency_s": 5.0}]
    text = format_summary(summarize(records, scheduled=2, duration_s=1.0), ["127.0.0.1:9"])
    assert "1 failed (timeout 1)" in text and "INCOMPLETE" in text and "p99 5.00 s" in text
    assert "127.0.0.1:9" in text


def test_library_side_never_imports_locust_or_gevent():
    # The runner lives in processes that may drive Ray: gevent's monkey-patching must stay out.
    code = ("import sys, loadgen.runner, loadgen.cli, loadgen.payloads; "
            "bad = [m for m in ('gevent', 'locust', 'geventhttpclient') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_metrics_on_every_interface_are_advertised_at_this_machines_address():
    from loadgen.runner import advertised_host

    assert advertised_host("10.1.2.3") == "10.1.2.3"
    host = advertised_host("0.0.0.0")
    assert host and host != "0.0.0.0"
