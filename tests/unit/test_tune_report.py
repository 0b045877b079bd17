"""The report: the frontier SVG parses, the snippet is a valid serve-core config, the files are written."""

import json
import xml.etree.ElementTree as ET

import yaml

from serve_core.config_file import ServeConfig
from tune.__main__ import main
from tune.frontier import Point, pareto
from tune.report import frontier_svg, render_md, write_report
from tune.sweep import load_sweep
from tune.tuner import run_sweep

SVG = "{http://www.w3.org/2000/svg}"


def test_frontier_svg_parses_and_marks_points():
    pts = [Point("a", 10, 0.9), Point("b", 20, 0.99), Point("c", 30, 0.95)]
    svg = frontier_svg(pts, pareto(pts), {"a": False, "b": True, "c": True}, chosen="b")
    root = ET.fromstring(svg)
    circles = root.findall(f".//{SVG}circle[@class='candidate']")
    assert len(circles) == 3
    assert [c.get("fill") for c in circles] == ["none", "#0072B2", "#0072B2"]
    assert len(root.findall(f".//{SVG}circle[@class='chosen']")) == 1
    assert root.find(f".//{SVG}path[@class='frontier']") is not None
    ET.fromstring(frontier_svg([], [], {}))  # nothing to draw still parses


def test_report_of_a_simulated_sweep(tmp_path):
    d = run_sweep(load_sweep("tune/sweeps/ci_small.yaml"), runner=None, log=lambda m: None)
    md = render_md(d)
    assert "## Recommendation" in md and "## Frontier (simulated)" in md
    snippet = md.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = ServeConfig.model_validate(yaml.safe_load(snippet))
    assert cfg.applications[0].deployments[0].autoscaling_config is not None
    path = write_report(d, "<svg xmlns='http://www.w3.org/2000/svg'/>", str(tmp_path), now=0)
    assert path.endswith("ci_small-19700101-000000")
    assert json.loads(open(f"{path}/result.json").read())["recommendation"]["label"] == d["recommendation"]["label"]
    assert "<svg" in open(f"{path}/report.html").read()


def test_cli_run_without_confirmation(tmp_path, capsys):
    assert main(["run", "tune/sweeps/ci_small.yaml", "--no-confirm", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "recommended" in out
    (run,) = list(tmp_path.iterdir())
    html = (run / "report.html").read_text()
    svg = html[html.index("<svg"):html.index("</svg>") + 6]
    ET.fromstring(svg)
    assert (run / "report.md").exists() and (run / "result.json").exists()


def test_cli_overrides_are_validated(tmp_path, capsys):
    assert main(["run", "tune/sweeps/ci_small.yaml", "--no-confirm", "--compare", "fixed_peek",
                 "--out", str(tmp_path)]) == 3
    assert "--compare" in capsys.readouterr().err
    assert main(["run", "tune/sweeps/ci_small.yaml", "--no-confirm", "--target", "nowhere", "--out", str(tmp_path)]) == 3
    assert main(["run", "tune/sweeps/ci_small.yaml", "--no-confirm", "--compare", "fixed_peak",
                 "--target", "embedded:x", "--out", str(tmp_path)]) == 0
    doc = json.loads(next(tmp_path.iterdir()).joinpath("result.json").read_text())
    assert [c["kind"] for c in doc["comparisons"]] == ["fixed_peak"]
