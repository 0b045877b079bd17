"""A campaign: experiments run back to back on one cluster, as users run them, with the cluster's
health checked before the first and after every one (chaos.campaign.health). One report for the whole
campaign (chaos.campaign.report) links each run's.

    python -m chaos campaign chaos/campaigns/ci.yaml --target embedded:default

```yaml
name: ci
description: Three short faults back to back.
target: {kind: embedded, name: default}   # every run's target (--target overrides)
backend: serve_core                       # optional: every run's backend (default: each file's)
experiments:                              # paths next to this file, or from the working directory
  - ../experiments/ci_replica_kill.yaml
  - {path: ../experiments/ci_proxy_kill.yaml, seed: 5, rate: 80, backend: ray_serve}
health: {settle_s: 120, max_rss_mib: {default: 1024, replica: 512}, max_open_fds: {default: 1024}}
on_failure: continue                      # or stop: after a run that did not pass or a check with findings
```

``load_campaign`` validates the file and every experiment in it (with the overrides) before
anything runs, and raises ``ExperimentError`` naming the field, the value, the fix and the line.
``run_campaign`` runs it; the runs and the health checks are passed in, so the order, the
stop rule and the exit status are unit-tested without a cluster.
"""

from __future__ import annotations

import difflib
import os
import time
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chaos.campaign.health import HealthBounds, HealthReport
from chaos.campaign.report import REPORT_FILE, write_campaign
from chaos.errors import MISSING, NO_VALUE, ChaosError, ExperimentError, Problem
from chaos.run.journal import run_dir as timestamped_dir
from chaos.spec.experiment import Backend, EmbeddedTarget, Experiment, TargetSpec
from chaos.spec.loading import load_experiment, parse_target
from chaos.spec.validation_errors import with_line

CAMPAIGNS_DIR = os.path.join(os.path.dirname(__file__), "campaigns")
RUNS_DIR = "runs"
EXIT_OK, EXIT_FOUND, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 3, 130
ERROR, SKIPPED = "error", "skipped"  # verdicts of a run beside passed, failed, aborted


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignRun(_Strict):
    """One experiment of the campaign, with its overrides. A string is shorthand for ``{path: ...}``."""

    path: str = Field(..., min_length=1, description="The experiment's YAML file: next to the campaign file, or "
                                                     "from the working directory (ready ones: chaos/experiments/).")
    backend: Backend | None = Field(None, description="serve_core or ray_serve for this run (default: the "
                                                      "campaign's, else the experiment's).")
    seed: int | None = Field(None, ge=0, description="Seed of this run (default: the experiment's).")
    rate: float | None = Field(None, gt=0, description="Requests/s of a constant load for this run (default: the "
                                                       "experiment's).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class Campaign(_Strict):
    """Experiments run one after another on one cluster, its health checked between them."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="Name (letters, digits, _ . -); the campaign's directory starts with it.")
    description: str = Field("", description="What the campaign shows, in a sentence or two.")
    target: TargetSpec = Field(default_factory=EmbeddedTarget, description="The cluster every run uses (kind: "
                                                                           "embedded, compose).")
    backend: Backend | None = Field(None, description="Backend of every run (default: each experiment's).")
    experiments: list[CampaignRun] = Field(..., min_length=1, description="The experiments, in order.")
    health: HealthBounds = Field(default_factory=HealthBounds, description="What the health checks require.")
    on_failure: Literal["continue", "stop"] = Field(
        "continue", description="After a run that did not pass, or a health check with findings: continue with the "
                                "next experiment, or stop the campaign.")


@dataclass
class LoadedCampaign:
    campaign: Campaign
    source: str
    experiments: list[Experiment]  # as they will run (overrides applied)
    paths: list[str]  # the files they came from

    @property
    def target_text(self) -> str:
        t = self.campaign.target
        return f"embedded:{t.name}" if t.kind == "embedded" else f"compose:{t.project}"


# -- reading ------------------------------------------------------------------------------------


def load_campaign(path: str, target: str | None = None, cwd: str | None = None) -> LoadedCampaign:
    """Read and validate a campaign file and each of its experiments; ``target`` (embedded:NAME,
    compose:PROJECT) replaces the file's."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise ExperimentError(Problem("file", path, "no such file; check the path (ready campaigns are in "
                                                    "chaos/campaigns/)"), path) from None
    except OSError as e:
        raise ExperimentError(Problem("file", path, f"cannot read it: {e.strerror}"), path) from None
    return parse_campaign_text(text, path, target=target, cwd=cwd)


def parse_campaign_text(text: str, source: str = "<campaign>", target: str | None = None,
                        cwd: str | None = None) -> LoadedCampaign:
    try:
        doc = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ExperimentError(Problem("YAML", NO_VALUE, f"{e.problem or e}; fix the syntax there (indentation, a "
                                                        "missing ':' or quote)", mark.line + 1 if mark else None),
                              source) from None
    except yaml.YAMLError as e:
        raise ExperimentError(Problem("YAML", NO_VALUE, f"{e}; fix the syntax"), source) from None
    if not isinstance(doc, dict):
        raise ExperimentError(Problem("(document)", doc, "a campaign is a mapping with name, target, experiments "
                                                         "and health"), source)
    if target is not None:
        doc = {**doc, "target": parse_target(target)}
    try:
        campaign = Campaign.model_validate(doc)
    except ValidationError as e:
        raise ExperimentError(problems_of(e, node), source) from None
    base = os.path.dirname(os.path.abspath(source)) if source != "<campaign>" else None
    experiments, paths, problems = [], [], []
    spec = {"kind": campaign.target.kind, **campaign.target.model_dump(mode="json", exclude_unset=True)}
    for i, run in enumerate(campaign.experiments):
        where = f"experiments[{i}].path"
        found = resolve(run.path, base, cwd or os.getcwd())
        if found is None:
            problems.append(with_line(Problem(where, run.path, "no such file next to the campaign file or in the "
                                                               "working directory (ready experiments are in "
                                                               "chaos/experiments/)"), node))
            continue
        try:
            exp = load_experiment(found, target=spec, backend=run.backend or campaign.backend, seed=run.seed,
                                  rate=run.rate)
        except ExperimentError as e:
            problems.append(with_line(Problem(where, run.path, f"the experiment is invalid with the campaign's "
                                                               f"overrides: {e}"), node))
            continue
        experiments.append(exp)
        paths.append(found)
    if problems:
        raise ExperimentError(problems, source)
    return LoadedCampaign(campaign, source, experiments, paths)


def resolve(path: str, base: str | None, cwd: str) -> str | None:
    """An experiment's file: as given when absolute, else next to the campaign file, else from the
    working directory; None when there is none."""
    if os.path.isabs(path):
        return path if os.path.isfile(path) else None
    for root in (base, cwd):
        if root is not None and os.path.isfile(os.path.join(root, path)):
            return os.path.normpath(os.path.join(root, path))
    return None


def problems_of(e: ValidationError, node: Any) -> list[Problem]:
    """A campaign's pydantic errors as Problems: a readable path, the value, a fix (the field's
    description, the allowed keys) and the line."""
    out: list[Problem] = []
    for err in e.errors():
        path, parent, described = _walk(err["loc"])
        typ, msg = err["type"], err["msg"].removeprefix("Value error, ")
        desc = f" ({described.description})" if described is not None and described.description else ""
        value: object = err.get("input")
        if typ == "missing":
            value, fix = MISSING, f"add it{desc}"
        elif typ == "extra_forbidden":
            allowed = list(parent.model_fields) if parent is not None else []
            close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
            fix = ("remove it" + (f" (did you mean {close[0]}?)" if close else "")
                   + (f"; allowed here: {', '.join(allowed)}" if allowed else ""))
        elif typ in ("union_tag_invalid", "union_tag_not_found"):
            path, value = path + ".kind", err.get("ctx", {}).get("tag", MISSING)
            fix = f"set kind to one of {err.get('ctx', {}).get('expected_tags', '')}".replace("'", "")
        elif typ == "literal_error":
            fix = msg.replace("Input should be", "use")
        else:
            fix = msg + desc
        out.append(with_line(Problem(path, value, fix), node))
    return out


def _walk(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None, Any]:
    """The readable path of a pydantic ``loc`` in a Campaign, the model holding its last field,
    and that field's info (discriminator tags such as ``embedded`` are left out of the path)."""
    text, parent, info = "", None, None
    tp: Any = Campaign
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            tp = (typing.get_args(tp) or (None,))[0]
            continue
        tagged = [m for m in typing.get_args(tp) if isinstance(m, type) and issubclass(m, BaseModel)
                  and "kind" in m.model_fields and m.model_fields["kind"].default == part]
        if tagged:  # a discriminator tag: into that member of the union
            tp = tagged[0]
            continue
        text += ("." if text else "") + str(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            parent, info = tp, tp.model_fields[part]
            tp = info.annotation
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if typing.get_origin(tp) is not list and len(members) == 1:  # X | None
                tp = members[0]
        else:  # a key the model does not have: the model is where it was found
            parent = tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
            tp, info = None, None
    return text or "(document)", parent, info


# -- running ------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """What running one experiment gave: the verdict, its reasons, and the run's directory."""

    verdict: str  # passed, failed, aborted, error
    reasons: list[str] = field(default_factory=list)
    run_dir: str | None = None
    report: str | None = None  # the run's report.md
    interrupted: bool = False


@dataclass
class RunRecord:
    index: int
    name: str
    path: str
    backend: str
    seed: int
    verdict: str = SKIPPED
    reasons: list[str] = field(default_factory=list)
    run_dir: str | None = None  # relative to the campaign's directory
    report: str | None = None  # relative to the campaign's directory
    sent: int | None = None
    ok: int | None = None
    failed: int | None = None
    took_s: float | None = None
    health: dict[str, Any] | None = None  # the check after it (HealthReport.to_dict())


RunOne = Callable[[Experiment, str], RunOutcome]  # experiment, directory for its run -> outcome
Check = Callable[[str, str], HealthReport]  # label, backend -> the check's report


@dataclass
class CampaignResult:
    directory: str
    doc: dict[str, Any]
    status: int

    @property
    def report(self) -> str:
        return os.path.join(self.directory, REPORT_FILE)


def run_campaign(loaded: LoadedCampaign, out_root: str, run_one: RunOne, check: Check,
                 say: Callable[[str], None] = print, wall: Callable[[], float] = time.time,
                 write: Callable[[str, dict[str, Any]], None] | None = None) -> CampaignResult:
    """Check, then run each experiment and check again, in order; stop early when ``on_failure``
    says so or on Ctrl-C. ``write(directory, doc)`` saves campaign.json and the report after every step."""
    c = loaded.campaign
    started = wall()
    directory = timestamped_dir(out_root, c.name, started)
    runs_root = os.path.join(directory, RUNS_DIR)
    save = write or write_campaign
    records = [RunRecord(i + 1, e.name, os.path.relpath(p), e.backend, e.seed)
               for i, (e, p) in enumerate(zip(loaded.experiments, loaded.paths, strict=True))]
    doc: dict[str, Any] = {"version": 1, "name": c.name, "description": c.description, "source": loaded.source,
                           "target": loaded.target_text, "on_failure": c.on_failure,
                           "health_bounds": c.health.model_dump(mode="json"), "started": started, "ended": None,
                           "baseline": None, "runs": [], "stopped": None, "interrupted": False, "verdict": None}

    def flush() -> None:
        doc["runs"] = [asdict(r) for r in records]
        doc["ended"] = wall()
        doc["verdict"], doc["status"] = verdict_of(doc)
        save(directory, doc)

    try:
        say(f"campaign {c.name}: {len(records)} experiment(s) on {loaded.target_text}; reports in {directory}")
        first_backend = loaded.experiments[0].backend
        baseline = check("before the first run", first_backend)
        doc["baseline"] = baseline.to_dict()
        say(health_line("before the first run", baseline))
        flush()
        for record, exp in zip(records, loaded.experiments, strict=True):
            if doc["stopped"]:
                break
            say(f"campaign {c.name}: run {record.index}/{len(records)}: {exp.name} ({exp.backend}, seed {exp.seed})")
            t = wall()
            outcome = run_one(exp, runs_root)
            record.took_s = round(wall() - t, 1)
            _take(record, outcome, directory)
            flush()
            if outcome.interrupted:
                raise KeyboardInterrupt
            health = check(f"after {exp.name}", exp.backend)
            record.health = health.to_dict()
            say(health_line(f"after {exp.name}", health))
            if c.on_failure == "stop" and (record.verdict != "passed" or not health.healthy):
                doc["stopped"] = (f"stopped after run {record.index} ({exp.name}): "
                                  + ("it " + record.verdict if record.verdict != "passed" else "the health check found "
                                     f"{len(health.findings)} problem(s)") + " and on_failure is stop")
            flush()
    except KeyboardInterrupt:
        doc["interrupted"] = True
    flush()
    return CampaignResult(directory, doc, int(doc["status"]))


def _take(record: RunRecord, outcome: RunOutcome, directory: str) -> None:
    import json

    record.verdict, record.reasons = outcome.verdict, list(outcome.reasons)
    if outcome.run_dir:
        record.run_dir = os.path.relpath(outcome.run_dir, directory)
        try:
            with open(os.path.join(outcome.run_dir, "summary.json")) as f:
                summary = json.load(f)
            record.sent, record.ok, record.failed = summary.get("sent"), summary.get("ok"), summary.get("failed")
        except (OSError, ValueError):
            pass
    if outcome.report:
        record.report = os.path.relpath(outcome.report, directory)


def verdict_of(doc: dict[str, Any]) -> tuple[str, int]:
    """The campaign's verdict and exit status from its document: passed (0) when every run
    passed and every check was healthy; interrupted (130); failed (1) otherwise. Pure."""
    if doc.get("interrupted"):
        return "interrupted", EXIT_INTERRUPTED
    checks = [doc.get("baseline")] + [r.get("health") for r in doc.get("runs") or []]
    unhealthy = any(h is not None and not h.get("healthy") for h in checks)
    runs = doc.get("runs") or []
    if unhealthy or any(r.get("verdict") not in ("passed", SKIPPED) for r in runs):
        return "failed", EXIT_FOUND
    if any(r.get("verdict") == SKIPPED for r in runs) or doc.get("baseline") is None:
        return "incomplete", EXIT_FOUND
    return "passed", EXIT_OK


def health_line(label: str, h: HealthReport) -> str:
    head = f"health {label}: " + ("healthy" if h.healthy else f"{len(h.findings)} finding(s)") + f" ({h.took_s:.0f}s)"
    return head + "".join(f"\n  - {f}" for f in h.findings)


# -- the command --------------------------------------------------------------------------------


def campaign_command(path: str, target: str | None, out: str, listeners: Callable[[], list[Any]],
                     validate_only: bool = False, say: Callable[[str], None] = print) -> int:
    """``python -m chaos campaign``: validate, check the cluster answers, run, report. ``listeners``
    makes each run's listeners (the progress printer, the report)."""
    from chaos.campaign.checker import HealthChecker
    from chaos.report.run_report import ReportListener
    from chaos.run.options import RunOptions
    from chaos.run.runner import run_experiment
    from chaos.targets import make_target

    loaded = load_campaign(path, target=target)
    c = loaded.campaign
    if validate_only:
        say(describe(loaded))
        return EXIT_OK
    cluster = make_target(c.target, loaded.experiments[0].backend)
    cluster.check()  # a TargetError (exit 3) before anything starts
    checker = HealthChecker(cluster, c.health, say=say)

    def run_one(exp: Experiment, root: str) -> RunOutcome:
        made = listeners()
        report = next((x for x in made if isinstance(x, ReportListener)), None)
        try:
            r = run_experiment(exp, listeners=made, options=RunOptions(out_root=root))
        except ChaosError as e:  # the cluster was not fit to start the run (the check after says why)
            return RunOutcome(ERROR, [str(e)])
        return RunOutcome(r.verdict, r.reasons, r.run_dir, report.report_path if report else None, r.interrupted)

    result = run_campaign(loaded, out, run_one, lambda label, backend: checker.check(label, backend), say=say)
    say(f"campaign {c.name}: {result.doc['verdict'].upper()}")
    say(f"report: {result.report}")
    return result.status


def describe(loaded: LoadedCampaign) -> str:
    c, lines = loaded.campaign, []
    lines.append(f"campaign {c.name}" + (f": {c.description.strip().splitlines()[0]}" if c.description.strip() else ""))
    lines.append(f"  target     {loaded.target_text}, on failure: {c.on_failure}")
    total = 0.0
    for i, (e, p) in enumerate(zip(loaded.experiments, loaded.paths, strict=True), 1):
        total += e.run_s
        lines.append(f"  {i:>2}. {e.name:<24} {e.run_s:>5g}s  {e.backend}, seed {e.seed}, {len(e.method)} fault "
                     f"entr{'y' if len(e.method) == 1 else 'ies'}  ({os.path.relpath(p)})")
    h = c.health
    lines.append(f"  load       {total:g}s in all, plus deploys and {len(loaded.experiments) + 1} health checks")
    lines.append(f"  health     settle {h.settle_s:g}s, probe {'on' if h.probe else 'off'}, RSS <= "
                 + ", ".join(f"{k} {v:g} MiB" for k, v in h.max_rss_mib.items()) + ", open files <= "
                 + ", ".join(f"{k} {v}" for k, v in h.max_open_fds.items())
                 + f", growth between checks <= {h.max_rss_growth_mib:g} MiB and {h.max_fds_growth} files")
    return "\n".join(lines)
