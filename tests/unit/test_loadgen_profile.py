"""Profiles from YAML and trace files: what is accepted, and errors that name the place and the fix."""

import pytest

from loadgen.errors import ProfileError, TraceError
from loadgen.profile import Constant, Trace, load_profile, parse_profile
from loadgen.schedule import build_schedule
from loadgen.trace import read_trace

pytestmark = pytest.mark.unit


# -- profiles --------------------------------------------------------------------------------

def test_parse_each_kind():
    kinds = [
        {"kind": "constant", "rate": 5, "duration_s": 2},
        {"kind": "step", "rate": 1, "to_rate": 2, "at_s": 1, "duration_s": 2},
        {"kind": "spike", "rate": 1, "spike_rate": 9, "at_s": 1, "spike_s": 1, "duration_s": 3},
        {"kind": "ramp", "rate": 0, "to_rate": 9, "duration_s": 3},
        {"kind": "diurnal", "mean_rate": 5, "amplitude": 2, "period_s": 10, "duration_s": 30},
        {"kind": "trace", "path": "x.txt", "speedup": 2},
    ]
    assert [parse_profile(k).kind for k in kinds] == [k["kind"] for k in kinds]


@pytest.mark.parametrize("data,expected", [
    ({"kind": "constant", "rate": 0, "duration_s": 1}, "rate: Input should be greater than 0"),
    ({"kind": "constant", "rate": 1}, "constant.duration_s: Field required"),
    ({"kind": "constant", "rate": 1, "duration_s": 1, "burst": 3}, "burst: Extra inputs are not permitted"),
    ({"kind": "step", "rate": 1, "to_rate": 2, "at_s": 5, "duration_s": 3}, "at_s (5.0) must be before duration_s"),
    ({"kind": "spike", "rate": 1, "spike_rate": 2, "at_s": 2, "spike_s": 2, "duration_s": 3}, "must not pass"),
    ({"kind": "diurnal", "mean_rate": 1, "amplitude": 2, "period_s": 1, "duration_s": 3}, "rate would go negative"),
    ({"kind": "poisson", "rate": 1}, "does not match any of the expected tags"),
    ({"rate": 1, "duration_s": 3}, "add kind: constant"),
])
def test_invalid_profiles_name_the_field(data, expected):
    with pytest.raises(ProfileError) as err:
        parse_profile(data, "p.yaml")
    assert "p.yaml" in str(err.value)
    assert expected in str(err.value)


def test_profile_must_be_a_mapping():
    with pytest.raises(ProfileError, match="expected a mapping"):
        parse_profile([1, 2])


def test_load_profile_from_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("kind: constant\nrate: 20\nduration_s: 3\n")
    assert load_profile(path) == Constant(rate=20, duration_s=3)


def test_load_profile_errors(tmp_path):
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [constant\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(bad)


def test_trace_path_is_relative_to_the_profile_file(tmp_path):
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "day.txt").write_text("5\n6\n")
    (tmp_path / "p.yaml").write_text("kind: trace\npath: traces/day.txt\n")
    profile = load_profile(tmp_path / "p.yaml")
    assert isinstance(profile, Trace)
    assert build_schedule(profile).offsets == [0.0, 1.0]


# -- trace files -----------------------------------------------------------------------------

def test_plain_lines_with_comments_header_and_disorder(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("timestamp\n# recorded on node 1\n1712000002.5\n\n1712000001.0\n1712000001.25\n")
    assert read_trace(path) == [1712000001.0, 1712000001.25, 1712000002.5]


def test_csv_timestamp_column_and_iso_times(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("route,Timestamp,status\n/a,2024-04-05T12:00:00Z,200\n/b,2024-04-05T12:00:00.500+00:00,503\n")
    times = read_trace(path)
    assert times[1] - times[0] == pytest.approx(0.5)


def test_naive_and_aware_iso_times_mix_as_utc(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("2024-04-05T12:00:00\n2024-04-05T12:00:01Z\n")
    times = read_trace(path)
    assert times[1] - times[0] == pytest.approx(1.0)


@pytest.mark.parametrize("name,text,line,problem,fix", [
    ("t.txt", "1.0\n2.0\nsoon\n", 3, "'soon' is not a timestamp", "ISO 8601"),
    ("t.txt", "1.0\nnan\n", 2, "'nan' is not a timestamp", "as a number"),
    ("t.csv", "time,route\n1,/a\n", 1, "no 'timestamp' column (columns: time, route)", "rename the column"),
    ("t.csv", "route,timestamp\n/a,1\n/b\n", 3, "the row has 1 columns", "give every row a value"),
    ("t.csv", "route,timestamp\n/a,\n", 2, "'' is not a timestamp", "ISO 8601"),
    ("t.txt", "\n# nothing\n", None, "no timestamps found", "one timestamp per line"),
    ("t.csv", "timestamp,route\n", None, "no timestamps found after the header", "below the header"),
])
def test_bad_trace_names_file_line_and_fix(tmp_path, name, text, line, problem, fix):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceError) as err:
        read_trace(path)
    assert err.value.path == str(path) and err.value.line == line
    message = str(err.value)
    assert str(path) in message and problem in message and fix in message
    if line is not None:
        assert f"line {line}" in message


def test_missing_trace_file(tmp_path):
    with pytest.raises(TraceError, match="does not exist.*Fix: check the path"):
        read_trace(tmp_path / "nope.txt")
