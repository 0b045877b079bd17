"""Shrink a failing run's schedule to the smallest one that still fails, as hypothesis
shrinks a failing example: ``python -m chaos shrink RUN_DIR``.

1. **Pin.** The run's journal holds the experiment as run and its planned faults. Each
   planned fault becomes one ``at_s`` fault of an explicit experiment (its id ``F1``,
   ``F2``, ... in plan order), with its concrete node, action, arguments and hold; a kill-node
   and the restart its ``duration_s`` planned stay one fault. Load, SLOs, windows, application,
   target, seed, rollbacks and abort conditions are the run's; a candidate that kills or
   partitions a node also restarts every node that is down as a rollback (after the SLO windows,
   so no verdict moves): an abort skips a planned restart, a node frozen or cut off for a few
   seconds is declared dead, and the next candidate needs the whole cluster.
   Every candidate is a standalone YAML
   file run as it is written: the last failing one is the reproducer (``minimal.yaml``).
   What pinning cannot make identical: kill-replica picks its victim among the matching
   replicas with a seed drawn from the fault's place in the method, which moves when faults
   are removed (the deployment is kept, and one that could hit any replica is pinned to the node
   where the run's victim was; replica ids differ between runs anyway), and nothing pins the
   cluster's state (replica placement, a restarted controller) or how long each injection takes.
2. **Replay.** The pinned schedule is run first: a run that does not fail again is not
   reproducible (exit 1), and nothing is shrunk.
3. **Search.** Delta debugging (ddmin: chunks of faults removed, then single faults) finds a
   1-minimal failing schedule: removing any one of its faults makes it pass (the empty
   schedule included). Each schedule is run at most once.
4. **Simplify** (``--simplify``): one pass over the minimal faults trying a shorter hold,
   smaller arguments and an earlier start, each kept only if the schedule still fails.
5. **Confirm** (``--confirm N``): the result is run N more times; the summary says how many
   of them failed.

"Fails" (``--match``): ``same`` (default) the run violates an SLO (in a judged window) or
trips an abort condition that the original run did, where an availability SLO and an abort on
client failures or the burn rate count as one ("failed requests": which of them shows depends
on when in the run the requests failed); ``exact`` the same without that; ``any`` any SLO
violation or abort condition; ``verdict`` a failed or aborted verdict for any reason (also a fault not injected, an
SLO not judged). An aborted run counts as failing when its abort matches. A run that did not
test its schedule (a runner error such as the cluster not ready, or the steady state not met
before the faults) has no outcome: it is run again (twice at most, within the bounds), and a
candidate that never gets tested stops the shrink (exit 3) with what was found so far. Before
each candidate the shrinker waits for the cluster to be whole and, with ``--no-deploy``, for a
ready proxy where the load enters.

Bounds: ``--max-runs`` and ``--max-time``; a run is not started when the time left is less
than the longest run so far. On a bound (or Ctrl-C) the smallest failing schedule found so
far is the result, marked "may not be minimal". Flaky runs: every schedule's first outcome
is believed (the search stays bounded), so a schedule that failed by chance can be kept; its
result has failed at least once, and is 1-minimal against what the runs showed. ``--confirm``
measures how reliably it fails.

The search (chaos.shrink.search: ``ddmin``, ``simplify``, ``Memo``) and the schedules
(chaos.shrink.schedule: pinning, judging, simpler faults) are pure; the ``Shrinker`` here drives
them with a candidate runner (by default ``run_candidate``: the runner of ``python -m chaos
run``, in this process) and writes the shrink directory.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TextIO

from chaos.errors import ChaosError
from chaos.run.journal import JOURNAL_FILE, load_journal, run_dir, write_json_atomic
from chaos.shrink.schedule import (
    FAILED_REQUESTS,
    FAILING,
    MATCHES,
    Pinned,
    ShrinkError,
    candidate_experiment,
    experiment_yaml,
    fails_like,
    failure_signature,
    inexact,
    not_tested,
    pin,
    simplify_steps,
)
from chaos.shrink.search import Exhausted, Memo, ddmin, simplify
from chaos.spec.experiment import Experiment
from chaos.spec.loading import load_experiment

__all__ = ["EXIT_ERROR", "EXIT_FOUND", "EXIT_INTERRUPTED", "EXIT_NOT_REPRODUCED", "ShrinkError", "ShrinkOptions",
           "ShrinkResult", "Shrinker", "run_candidate"]

SUMMARY_FILE, DATA_FILE, MINIMAL_FILE = "shrink.md", "shrink.json", "minimal.yaml"
EXIT_FOUND, EXIT_NOT_REPRODUCED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 3, 130
RETRIES = 2  # a candidate run that could not test its schedule is run again this many times


# -- the shrinker -------------------------------------------------------------------------------


@dataclass
class ShrinkOptions:
    max_runs: int = 30
    max_time_s: float = 3600.0
    match: str = "same"
    confirm: int = 0
    simplify: bool = False
    target: str | None = None  # embedded:NAME / compose:PROJECT instead of the run's
    deploy: bool = True
    out: str | None = None  # the shrink directory (default: RUN_DIR/shrink-<UTC time>)


@dataclass
class Trial:
    id: str  # c00, c01, ...
    purpose: str  # replay, search, simplify, confirm
    faults: list[str]
    fails: bool
    verdict: str | None
    signature: list[str]
    reasons: list[str]
    run_dir: str
    took_s: float
    yaml: str
    untested: str | None = None  # why the run did not test the schedule (then it has no outcome)


@dataclass
class ShrinkResult:
    exit_code: int
    directory: str
    minimal: list[Pinned] = field(default_factory=list)
    complete: bool = False
    minimal_path: str | None = None
    summary_path: str | None = None


CandidateRunner = Callable[[str, str, bool, bool], str]  # (candidate yaml, out root, deploy, wait) -> run dir


def run_candidate(path: str, out_root: str, deploy: bool, wait: bool = False, ready_within_s: float = 240.0) -> str:
    """Run a candidate file as `python -m chaos run` would (the report included); its run
    directory. KeyboardInterrupt when interrupted. First ``wait_ready`` when asked to (after a
    failing run, before a retry) and when the cluster is not whole (the runner's check refuses to
    start)."""
    from chaos.report.run_report import ReportListener
    from chaos.run.options import RunOptions
    from chaos.run.runner import run_experiment
    from chaos.targets.base import TargetError

    exp = load_experiment(path)
    if wait:
        wait_ready(exp, deploy, ready_within_s)
    options = RunOptions(out_root=out_root, deploy=deploy)
    try:
        result = run_experiment(exp, listeners=[ReportListener()], options=options)
    except TargetError:  # from the check before anything started
        wait_ready(exp, deploy, ready_within_s)
        result = run_experiment(exp, listeners=[ReportListener()], options=options)
    if result.interrupted:
        raise KeyboardInterrupt
    return result.run_dir


def wait_ready(exp: Experiment, deploy: bool, within_s: float, every_s: float = 5.0) -> None:
    """Until the experiment's cluster is whole (every node up: one an earlier candidate killed may
    be restarting) and, when nothing will be deployed, has a ready proxy on every node the load
    enters through (one an earlier candidate froze or killed may be starting again). The last
    TargetError past ``within_s``."""
    from chaos.targets import make_target
    from chaos.targets.base import TargetError

    target = make_target(exp.target, exp.backend)
    deadline = time.monotonic() + within_s
    while True:
        try:
            target.check()
            if not deploy:
                target.proxy_urls(exp.backend, list(exp.load.proxies))
            return
        except TargetError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(every_s)


class Shrinker:
    """Shrinks the schedule of the failed run in ``run_path``; ``run()`` writes the shrink
    directory and returns the exit code with the result."""

    def __init__(self, run_path: str, options: ShrinkOptions | None = None, *,
                 runner: CandidateRunner = run_candidate, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.options = options or ShrinkOptions()
        if self.options.match not in MATCHES:
            raise ShrinkError(f"--match {self.options.match!r}: use one of {', '.join(MATCHES)}")
        file = os.path.join(run_path, JOURNAL_FILE) if os.path.isdir(run_path) else run_path
        try:
            self.journal = load_journal(file)
        except (OSError, ValueError) as e:
            raise ShrinkError(f"no readable journal at {file} ({e}): give a run directory "
                              "(reports/chaos/NAME-TIME) or its journal.json") from None
        self.run_dir = os.path.dirname(os.path.abspath(file))
        self.runner, self.out, self.clock, self.wall = runner, out, clock, wall
        self.original = failure_signature(self.journal)
        self._check_failed()
        self.base, self.pinned = pin(self.journal)
        self.name = str(self.journal.get("name") or self.base.get("name") or "run")
        self.directory = os.path.abspath(self.options.out or run_dir(self.run_dir, "shrink", wall()))
        self.trials: list[Trial] = []
        self.started = 0.0
        self.stopped: str | None = None
        self.confirmed: tuple[int, int] | None = None
        self.purpose = "replay"
        self.best: list[Pinned] | None = None  # the smallest failing schedule run so far (search, simplify)
        # Checked now, before any run: every candidate is a subset of this one.
        self.experiment = candidate_experiment(self.base, self.pinned, self._name(0), "", self.options.target)

    def _check_failed(self) -> None:
        j, match = self.journal, self.options.match
        verdict = j.get("verdict")
        if verdict not in FAILING:
            raise ShrinkError(f"the run {verdict or 'did not finish'} ({self.run_dir}): only a failed or aborted run "
                              "has a failing schedule to shrink")
        untested = not_tested(j)
        if untested is not None:
            raise ShrinkError(f"the run did not test its schedule ({untested}): its failure says nothing of the "
                              "faults; run it again")
        if not fails_like(j, self.original, match):
            raise ShrinkError(f"the run {verdict} without violating an SLO or tripping an abort condition ("
                              + "; ".join(j.get("reasons") or ["no reason recorded"])
                              + "): nothing for --match same/any to reproduce; use --match verdict to shrink to "
                                "any failed or aborted verdict")

    # -- the run --

    def run(self) -> ShrinkResult:
        opts = self.options
        self.started = self.clock()
        why = self._limit()
        if why is not None:
            raise ShrinkError(f"not even the replay fits the bounds ({why}): raise --max-runs or --max-time")
        os.makedirs(os.path.join(self.directory, "candidates"), exist_ok=True)
        self._say(f"shrinking {self.name} ({self.run_dir}): {len(self.pinned)} fault(s), failing as "
                  f"{', '.join(sorted(self.original)) or 'a ' + str(self.journal.get('verdict')) + ' verdict'} "
                  f"(--match {opts.match}); at most {opts.max_runs} runs in {_dur(opts.max_time_s)}")
        for p in self.pinned:
            self._say(f"  {p.describe()}")
        for note in inexact(self.pinned):
            self._say(f"  note: {note}")
        self._say(f"writing {self.directory}")
        memo: Memo[Pinned] = Memo(lambda faults: self._trial(faults, self.purpose), lambda runs: self._limit())
        minimal: list[Pinned] = list(self.pinned)
        complete = False
        try:
            self.purpose = "replay"
            if not memo(self.pinned):  # _check_bounds made room for this run
                self._say("the pinned schedule did not fail on replay: the failure is not reproducible from its "
                          "schedule alone (a flaky run, or a cause outside the faults)")
                return self._finish([], False, EXIT_NOT_REPRODUCED, reproduced=False)
            self.purpose = "search"
            minimal, complete = ddmin(self.pinned, memo)
            if opts.simplify and complete:
                self.purpose = "simplify"
                minimal, complete = simplify(minimal, simplify_steps(self.experiment.during), memo)
            if opts.confirm:
                self._confirm(minimal)
        except KeyboardInterrupt:
            self.stopped = "interrupted (Ctrl-C)"
            return self._finish(self.best or minimal, False, EXIT_INTERRUPTED)
        except ChaosError as e:  # a candidate could not run (the cluster gone, say): what was found so far
            self.stopped = f"could not go on: {e}"
            self._say(f"stopped: {self.stopped}")
            if not self.trials:
                raise
            return self._finish(self.best or [], False, EXIT_ERROR, reproduced=self.best is not None)
        self.stopped = self.stopped or memo.stopped
        return self._finish(minimal, complete, EXIT_FOUND)

    def _limit(self) -> str | None:
        """Why no further run may start (None: it may)."""
        opts, runs = self.options, len(self.trials)
        if runs >= opts.max_runs:
            return f"--max-runs {opts.max_runs} reached"
        used = self.clock() - self.started
        longest = max((t.took_s for t in self.trials), default=self._original_s())
        if used + longest > opts.max_time_s:
            return (f"--max-time {_dur(opts.max_time_s)}: {_dur(used)} used, and a run takes up to "
                    f"{_dur(longest)}")
        return None

    def _original_s(self) -> float:
        start, end = self.journal.get("start"), self.journal.get("end")
        return float(end - start) if isinstance(start, int | float) and isinstance(end, int | float) else 0.0

    def _confirm(self, minimal: list[Pinned]) -> None:
        failed = done = 0
        self.purpose = "confirm"
        for _ in range(self.options.confirm):
            why = self._limit()
            if why is not None:
                self._say(f"confirmation stopped after {done}: {why}")
                break
            try:
                failed += self._trial(tuple(minimal), "confirm")
            except Exhausted as e:
                self._say(f"confirmation stopped after {done}: {e}")
                break
            done += 1
        self.confirmed = (failed, done)

    def _trial(self, faults: tuple[Pinned, ...], purpose: str) -> bool:
        """Run ``faults`` as a new candidate; whether it fails. A run that could not test the
        schedule (a runner error, the steady state not met before the faults) is run again, up to
        RETRIES times within the budget (Exhausted past it), then ShrinkError: it is no outcome."""
        for attempt in range(RETRIES + 1):
            if attempt and (why := self._limit()) is not None:
                raise Exhausted(why)
            # After a failing run the cluster may still be recovering: wait for it, as before a retry.
            trial = self._run(faults, purpose, wait=attempt > 0 or bool(self.trials and self.trials[-1].fails))
            if trial.untested is None:
                if trial.fails and purpose != "confirm" and (self.best is None or len(faults) <= len(self.best)):
                    self.best = list(faults)
                return trial.fails
        raise ShrinkError(f"candidate {trial.id} could not test its schedule in {RETRIES + 1} runs: {trial.untested}; "
                          "check the cluster (`serve-core cluster status`) and the candidates' runs")

    def _run(self, faults: tuple[Pinned, ...], purpose: str, wait: bool) -> Trial:
        k = len(self.trials)
        cid = f"c{k:02d}"
        ids = [f.id for f in faults]
        exp = candidate_experiment(self.base, faults, self._name(k), f"Candidate {cid} ({purpose}) of shrinking "
                                   f"{self.run_dir}: faults {' '.join(ids) or '(none)'} of {len(self.pinned)}.",
                                   self.options.target)
        path = os.path.join(self.directory, "candidates", f"{cid}.yaml")
        with open(path, "w") as f:
            f.write(experiment_yaml(exp, self._header(cid, purpose, faults)))
        self._say(f"[{cid}] {purpose}: {len(faults)} fault(s) {' '.join(ids) or '(none)'} ...")
        t = self.clock()
        run_path = self.runner(path, os.path.join(self.directory, "runs"), self.options.deploy, wait)
        took = self.clock() - t
        journal = load_journal(os.path.join(run_path, JOURNAL_FILE))
        untested = not_tested(journal)
        fails = untested is None and fails_like(journal, self.original, self.options.match)
        sig = sorted(failure_signature(journal))
        trial = Trial(cid, purpose, ids, fails, journal.get("verdict"), sig, list(journal.get("reasons") or []),
                      os.path.relpath(run_path, self.directory), round(took, 1), os.path.relpath(path, self.directory),
                      untested)
        self.trials.append(trial)
        used = self.clock() - self.started
        outcome = f"NOT TESTED ({untested})" if untested else "FAILS" if fails else "passes"
        self._say(f"[{cid}] {outcome}: {trial.verdict}"
                  + (f" ({', '.join(sig)})" if sig else "") + f" in {_dur(took)}; runs {len(self.trials)} of "
                  f"{self.options.max_runs}, {_dur(used)} of {_dur(self.options.max_time_s)}; run {run_path}")
        return trial

    # -- output --

    def _finish(self, minimal: list[Pinned], complete: bool, code: int, reproduced: bool = True) -> ShrinkResult:
        result = ShrinkResult(code, self.directory, minimal, complete)
        if reproduced:
            exp = candidate_experiment(self.base, minimal, f"{self.name}-minimal",
                                       f"The smallest failing schedule found by shrinking {self.run_dir}: "
                                       f"{' '.join(p.id for p in minimal) or 'no fault'} of {len(self.pinned)}.",
                                       self.options.target)
            result.minimal_path = os.path.join(self.directory, MINIMAL_FILE)
            with open(result.minimal_path, "w") as f:
                f.write(experiment_yaml(exp, self._header("minimal", "reproducer", tuple(minimal))))
        result.summary_path = os.path.join(self.directory, SUMMARY_FILE)
        text = self._summary(result, reproduced)
        with open(result.summary_path, "w") as f:
            f.write(text)
        write_json_atomic(os.path.join(self.directory, DATA_FILE), {
            "run": self.run_dir, "match": self.options.match, "signature": sorted(self.original),
            "original": [{"id": p.id, **p.entry} for p in self.pinned], "reproduced": reproduced,
            "minimal": [{"id": p.id, **p.entry} for p in minimal] if reproduced else None, "complete": complete,
            "stopped": self.stopped, "confirmed": self.confirmed, "runs": len(self.trials),
            "seconds": round(self.clock() - self.started, 1), "exit_code": code,
            "trials": [asdict(t) for t in self.trials]})
        self._say("")
        self._say(text)
        return result

    def _summary(self, r: ShrinkResult, reproduced: bool) -> str:
        opts, ids = self.options, {p.id for p in r.minimal}
        title = (f"{len(self.pinned)} faults -> {len(r.minimal)}" if reproduced
                 else "not reproducible" if r.exit_code == EXIT_NOT_REPRODUCED else "could not replay")
        lines = [f"# Shrink of {self.name}: {title}", "",
                 f"- original run: `{self.run_dir}` ({self.journal.get('verdict')}: "
                 + "; ".join(self.journal.get("reasons") or []) + ")",
                 f"- failing means (--match {opts.match}): " + {
                     "same": f"one of {', '.join(sorted(self.original))} again",
                     "exact": f"one of {', '.join(sorted(self.original - {FAILED_REQUESTS}))} again",
                     "any": "any SLO violated or abort condition tripped",
                     "verdict": "a failed or aborted verdict"}[opts.match]]
        if not reproduced and r.exit_code != EXIT_NOT_REPRODUCED:
            lines.append(f"- **the replay could not test the schedule**: {self.stopped}")
        elif not reproduced:
            lines.append("- **the pinned schedule did not fail on replay**: the failure is not reproducible from its "
                         "schedule (a flaky run, or a cause outside the faults); nothing was shrunk")
        elif r.complete:
            lines.append("- result: **1-minimal**: removing any one of its faults makes the run pass"
                         + (" (the original was already minimal)" if len(r.minimal) == len(self.pinned) else ""))
        else:
            lines.append(f"- result: the smallest failing schedule found so far, **may not be minimal** "
                         f"(stopped: {self.stopped})")
        lines.append(f"- runs used: {len(self.trials)} of {opts.max_runs}; time {_dur(self.clock() - self.started)} "
                     f"of {_dur(opts.max_time_s)}")
        if self.confirmed is not None:
            lines.append(f"- confirmation: failed {self.confirmed[0]} of {self.confirmed[1]} rerun(s)")
        if r.minimal_path:
            lines.append(f"- reproducer: `{r.minimal_path}` (`python -m chaos run {r.minimal_path}`)")
        lines += ["", "## Minimal schedule" if reproduced else "## Schedule", ""]
        if reproduced and not r.minimal:
            lines.append("No fault: the run fails without any (the SLOs or the cluster, not the faults).")
        for p in (r.minimal if reproduced else self.pinned):
            lines.append(f"- {p.describe()}")
        lines += ["", "## Original schedule", "", "| id | fault | in the minimal |", "|---|---|---|"]
        lines += [f"| {p.id} | {p.describe().split(' ', 1)[1]} | {'yes' if p.id in ids else ''} |" for p in self.pinned]
        lines += ["", "## Candidates", "", "| # | purpose | faults | verdict | failure | fails | took | run |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| [{t.id}]({t.yaml}) | {t.purpose} | {' '.join(t.faults) or '(none)'} | {t.verdict} | "
                  f"{', '.join(t.signature)} | {'yes' if t.fails else 'no'} | {_dur(t.took_s)} | [run]({t.run_dir}) |"
                  for t in self.trials]
        notes = inexact(r.minimal if reproduced else self.pinned)
        if notes:
            lines += ["", "## Where a replay may differ", ""] + [f"- {n}" for n in notes]
        return "\n".join(lines) + "\n"

    def _header(self, cid: str, purpose: str, faults: Sequence[Pinned]) -> str:
        return (f"{cid} ({purpose}) of `python -m chaos shrink {self.run_dir}`\n"
                f"faults: {' '.join(f.id for f in faults) or '(none)'} of F1..F{len(self.pinned)}\n"
                "run it: python -m chaos run THIS_FILE\n")

    def _name(self, k: int) -> str:
        return f"{self.name}-c{k:02d}"

    def _say(self, line: str) -> None:
        if self.out is not None:
            self.out.write(line + "\n")
            self.out.flush()


def _dur(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
