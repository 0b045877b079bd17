"""Reading an experiment: ``load_experiment(path)`` reads a YAML file,
``parse_experiment_text(text)`` a YAML string and ``parse_experiment(doc)`` a mapping; all
apply the overrides (target, backend, seed), validate the document, run the cross-field
checks (chaos.spec.checks) and raise ``ExperimentError`` naming the field path, the
bad value, the fix and (for a file) the line. Use them rather than
``Experiment.model_validate``.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from chaos.errors import NO_VALUE, ExperimentError, Problem
from chaos.spec.checks import check_experiment
from chaos.spec.experiment import BACKENDS, Experiment
from chaos.spec.validation_errors import problems_of, with_line


def load_experiment(path: str, **overrides: Any) -> Experiment:
    """Read and validate an experiment file; ``overrides`` as in ``apply_overrides``."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise ExperimentError(Problem("file", path, "no such file; check the path (ready experiments are in "
                                                    "chaos/experiments/)"), path) from None
    except OSError as e:
        raise ExperimentError(Problem("file", path, f"cannot read it: {e.strerror}"), path) from None
    return parse_experiment_text(text, path, **overrides)


def parse_experiment_text(text: str, source: str = "<experiment>", **overrides: Any) -> Experiment:
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        col = f" column {mark.column + 1}" if mark is not None else ""
        raise ExperimentError(Problem("YAML", NO_VALUE, f"{e.problem or e} at{col}; fix the syntax there "
                                                        "(indentation, a missing ':' or quote)", line), source) from None
    except yaml.YAMLError as e:
        raise ExperimentError(Problem("YAML", NO_VALUE, f"{e}; fix the syntax"), source) from None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:  # pragma: no cover - safe_load succeeded
        node = None
    return parse_experiment(doc, source, _node=node, **overrides)


def parse_experiment(doc: Any, source: str | None = None, _node: Any = None, **overrides: Any) -> Experiment:
    """Validate a mapping (as read from YAML), apply overrides, run the cross-field checks."""
    if not isinstance(doc, dict):
        raise ExperimentError(Problem("(document)", doc, "an experiment is a mapping with name, application, load, "
                                                         "steady_state and method"), source)
    doc = _with_overrides(doc, **overrides)
    try:
        exp = Experiment.model_validate(doc)
    except ValidationError as e:
        raise ExperimentError(problems_of(e, _node), source) from None
    problems = check_experiment(exp)
    if problems:
        raise ExperimentError([with_line(p, _node) for p in problems], source)
    return exp


def apply_overrides(exp: Experiment, **overrides: Any) -> Experiment:
    """A copy of ``exp`` with ``target`` (``embedded:NAME``, ``compose:PROJECT`` or a mapping),
    ``backend``, ``seed`` and a constant load's ``rate`` replaced (None leaves a field as it is), validated again."""
    return parse_experiment(exp.model_dump(mode="json", exclude_unset=False), **overrides)


def parse_target(text: str) -> dict[str, Any]:
    """``embedded``, ``embedded:NAME``, ``compose:PROJECT`` -> a target mapping."""
    kind, _, name = text.partition(":")
    if kind == "embedded":
        return {"kind": "embedded", **({"name": name} if name else {})}
    if kind == "compose" and name:
        return {"kind": "compose", "project": name}
    raise ExperimentError(Problem("--target", text, "write embedded:CLUSTER (e.g. embedded:default) or "
                                                     "compose:PROJECT"))


def _with_overrides(doc: dict[str, Any], target: str | dict[str, Any] | None = None, backend: str | None = None,
                    seed: int | None = None, rate: float | None = None,
                    require_before: bool | None = None, duration: float | None = None) -> dict[str, Any]:
    doc = dict(doc)
    if duration is not None:  # a short run of a long experiment: a slice at the same fault rates
        doc = _with_duration(doc, duration)
    if require_before is not None:  # a comparison injects its faults even into a backend already failing
        doc["steady_state"] = {**dict(doc.get("steady_state") or {}), "require_before": require_before}
    if rate is not None:  # one experiment at the rate each backend sustains on this machine
        load = dict(doc.get("load") or {})
        profile = dict(load.get("profile") or {})
        if profile.get("kind", "constant") != "constant":
            raise ExperimentError(Problem("--rate", rate, "only a constant load profile takes --rate; edit the file"))
        load["profile"], doc["load"] = {**profile, "rate": rate}, load
    if target is not None:
        new = parse_target(target) if isinstance(target, str) else dict(target)
        old = doc.get("target") if isinstance(doc.get("target"), dict) else {}
        assert isinstance(old, dict)
        if old.get("kind", "embedded") == new["kind"]:  # keep e.g. workers
            new = {**old, **new}
        elif "workers" in old:
            new.setdefault("workers", old["workers"])
        doc["target"] = new
    if backend is not None:
        if backend not in BACKENDS:
            raise ExperimentError(Problem("--backend", backend, f"use one of {', '.join(BACKENDS)}"))
        doc["backend"] = backend
    if seed is not None:
        doc["seed"] = seed
    return doc


def _with_duration(doc: dict[str, Any], duration: float) -> dict[str, Any]:
    """``doc`` lasting ``duration`` seconds: the windows, the constant load and every schedule's times
    (at_s, every_s, start_s, end_s, min_gap_s) and the resource check's warm-up and span scaled by the
    same factor. Random rates, holds (duration_s, down_for_s) and arguments stay as they are, so the
    run is a slice of the long one at its fault density: a rare kind may not come at all."""
    ss = dict(doc.get("steady_state") or {})
    names = ("before_s", "during_s", "after_s")
    if duration <= 0 or not all(isinstance(ss.get(k), int | float) for k in names) or not sum(ss[k] for k in names):
        raise ExperimentError(Problem("--duration", duration, "give seconds > 0 for an experiment whose steady_state "
                                                              "has before_s, during_s and after_s"))
    windows = [float(ss[k]) for k in names]
    f = duration / sum(windows)
    ss.update({k: round(w * f, 3) for k, w in zip(names, windows, strict=True)})
    if isinstance(ss.get("resources"), dict):
        res = dict(ss["resources"])
        res.update({k: round(float(res[k]) * f, 3) for k in ("warmup_s", "min_span_s") if isinstance(res.get(k), int | float)})
        ss["resources"] = res
    load = dict(doc.get("load") or {})
    profile = dict(load.get("profile") or {})
    if profile.get("kind", "constant") != "constant":
        raise ExperimentError(Problem("--duration", duration, "only a constant load profile takes --duration; edit the file"))
    load["profile"] = {**profile, "duration_s": duration}
    method = []
    for entry in doc.get("method") or []:
        entry = dict(entry) if isinstance(entry, dict) else entry
        sched = dict(entry.get("schedule") or {}) if isinstance(entry, dict) else None
        if sched is not None:
            sched.update({k: round(float(sched[k]) * f, 3) for k in ("at_s", "every_s", "start_s", "end_s")
                          if isinstance(sched.get(k), int | float)})
            if isinstance(sched.get("random"), dict) and isinstance(sched["random"].get("min_gap_s"), int | float):
                sched["random"] = {**sched["random"], "min_gap_s": round(float(sched["random"]["min_gap_s"]) * f, 3)}
            entry["schedule"] = sched
        method.append(entry)
    return {**doc, "steady_state": ss, "load": load, "method": method}
