"""The SVG plot builder: well-formed XML, one path per series with data, one marker per fault."""

import xml.etree.ElementTree as ET

import pytest

from chaos.report.svg_plot import PALETTE, Line, Marker, line_plot, log_ticks, nice_ticks

pytestmark = pytest.mark.unit


def parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == "svg"
    return root


def test_paths_markers_and_legend():
    lines = [Line("sent/s", [(0, 100), (1, 101), (2, None), (3, 99), (4, 100)]),
             Line("errors/s", [(0, 0), (1, 5), (2, 0)], PALETTE[1], dashed=True),
             Line("empty", [(0, None)], PALETTE[2])]
    markers = [Marker(1.5, "f0 kill-replica", title="f0 on w1"), Marker(2.5, "f1 partition", until=3.5),
               Marker(9, "f2 beyond the axis")]
    root = parse(line_plot(lines, markers, title="Requests <&> errors", y_label="requests/s", x_range=(0, 4)))
    assert root.findtext("title") == "Requests <&> errors"
    paths = root.findall(".//path[@class='series']")
    assert [p.findtext("title") for p in paths] == ["sent/s", "errors/s"]  # nothing to draw for "empty"
    assert paths[0].get("d").count("M") == 2 and paths[0].get("d").count("L") == 2  # broken at the gap
    assert paths[1].get("stroke-dasharray") and paths[1].get("stroke") == PALETTE[1]
    faults = root.findall(".//g[@class='fault']")
    assert [f.findtext("text") for f in faults] == ["f0 kill-replica", "f1 partition"]  # 9 is off the axis
    assert faults[0].findtext("title") == "f0 on w1" and faults[0].find("rect") is None
    assert faults[1].find("rect") is not None  # held: shaded
    assert [g.findtext("text") for g in root.findall(".//g[@class='legend']")] == ["sent/s", "errors/s", "empty (no data)"]


def test_marker_positions_follow_the_axis():
    root = parse(line_plot([Line("a", [(0, 1), (10, 1)])], [Marker(5, "mid")], x_range=(0, 10), width=400))
    frame = root.find("rect")
    left, width = float(frame.get("x")), float(frame.get("width"))
    line = root.find(".//g[@class='fault']/line")
    assert float(line.get("x1")) == pytest.approx(left + width / 2, abs=0.1)


def test_log_scale_skips_what_it_cannot_draw():
    root = parse(line_plot([Line("p99", [(0, 0), (1, 10), (2, 1000), (3, -1), (4, 20)])], log_y=True))
    (path,) = root.findall(".//path[@class='series']")
    assert path.get("d").count("M") == 2  # 0 and -1 have no place on a log axis
    labels = [t.text for t in root.findall("text")]
    assert "10" in labels and "1000" in labels


def test_no_lines_at_all_is_still_a_plot_and_integer_ticks():
    root = parse(line_plot([], [Marker(0.5, "f0")]))
    assert root.findall(".//path") == [] and len(root.findall(".//g[@class='fault']")) == 1
    root = parse(line_plot([Line("replicas", [(0, 0), (1, 2), (2, 1)])], integer_y=True))
    ticks = [t.text for t in root.findall("text") if t.get("text-anchor") == "end" and t.text]
    assert ticks == ["0", "1", "2"]


def test_ticks():
    assert nice_ticks(0, 90, 10) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3, 3) == [3]
    assert log_ticks(5, 500) == [5, 10, 20, 50, 100, 200, 500]
    assert log_ticks(1, 1e6) == [1, 10, 100, 1000, 10000, 100000, 1e6]
