"""Schedules for chaos.shrink.shrink, pure: ``pin`` turns a run's journal (its experiment and planned
faults) into the experiment document and one ``Pinned`` fault per planned one (an ``at_s``
fault with its concrete node, arguments and hold; a kill-node and its planned restart stay
one); ``candidate_experiment`` builds the experiment running a subset of them and
``experiment_yaml`` writes it as a standalone file; ``failure_signature`` and ``fails_like``
judge a run's journal; ``simplify_steps`` are the simpler versions of a fault to try.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from chaos.errors import ChaosError
from chaos.spec.experiment import Experiment
from chaos.spec.loading import parse_experiment

MATCHES = ("same", "exact", "any", "verdict")
NODE_LOSING = ("kill-node", "partition")  # faults after which a node may be down
FAILED_REQUESTS = "failed requests"  # in a signature: an availability SLO or an abort on failures
ABORT_CONDITIONS = ("burn_rate", "client_failures")  # aborts that judge the run (not an error or Ctrl-C)
FAILING = ("failed", "aborted")
UNTESTED = ("error", "steady_state_before")  # aborts that say nothing of the schedule
MIN_HOLD_S = 0.5  # a hold is not halved below this


class ShrinkError(ChaosError):
    """The run cannot be shrunk (no journal, it did not fail, nothing was planned): why, and what to do."""


# -- pinning (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pinned:
    """One fault of a pinned schedule: its id (F1, F2, ... in the original plan's order) and
    its method entry, kept as canonical JSON so a schedule is hashable."""

    id: str
    entry_json: str

    @property
    def entry(self) -> dict[str, Any]:
        return dict(json.loads(self.entry_json))

    @classmethod
    def of(cls, id: str, entry: dict[str, Any]) -> Pinned:
        return cls(id, json.dumps(entry, sort_keys=True))

    def describe(self) -> str:
        e = self.entry
        target = e.get("target") or {}
        what = " ".join(f"{k}={target[k]}" for k in ("node", "app", "deployment") if target.get(k))
        extra = [f"{k}={v}" for k, v in sorted((e.get("args") or {}).items())]
        if e.get("duration_s"):
            extra.append(f"for {e['duration_s']:g}s")
        detail = f" ({', '.join(extra)})" if extra else ""
        return f"{self.id} {e['action']}{' ' + what if what else ''}{detail} at {e['schedule']['at_s']:g}s"


def pin(journal: dict[str, Any]) -> tuple[dict[str, Any], list[Pinned]]:
    """The run's experiment document (method emptied) and its planned method faults pinned. A
    kill-replica that chose its victim anywhere is pinned to the node where the run's victim was
    (as the journal's fault output names it), the closest the selectors come to the same replica.
    Pure."""
    doc = journal.get("experiment")
    if not isinstance(doc, dict):
        raise ShrinkError("the journal has no experiment: it is not a run's journal, or the run never started")
    planned = [p for p in journal.get("plan") or [] if p.get("phase", "method") == "method"]
    restarts = {(p.get("index"), p.get("occurrence"), p.get("node")): p for p in planned if p.get("restart_of")}
    victims = {(f.get("index"), f.get("occurrence")): ((f.get("output") or {}).get("target") or {}).get("node")
               for f in journal.get("faults") or [] if f.get("action") == "kill-replica"}
    pinned: list[Pinned] = []
    for p in planned:
        if p.get("restart_of"):
            continue  # part of its kill-node
        entry: dict[str, Any] = {"name": f"F{len(pinned) + 1} {p.get('label') or p['action']}",
                                 "action": p["action"], "schedule": {"at_s": p["at_s"]}}
        target = {k: p[k] for k in ("node", "deployment", "app") if p.get(k)}
        if p["action"] == "kill-replica" and not p.get("node") and victims.get((p.get("index"), p.get("occurrence"))):
            target["node"] = victims[(p.get("index"), p.get("occurrence"))]
        if target:
            entry["target"] = target
        if p.get("args"):
            entry["args"] = dict(p["args"])
        restart = restarts.get((p.get("index"), p.get("occurrence"), p.get("node"))) if p["action"] == "kill-node" else None
        hold = round(restart["at_s"] - p["at_s"], 3) if restart else p.get("duration_s")
        if hold:
            entry["duration_s"] = hold
        pinned.append(Pinned.of(f"F{len(pinned) + 1}", entry))
    return {k: v for k, v in doc.items() if k != "method"}, pinned


def inexact(pinned: Sequence[Pinned]) -> list[str]:
    """What pinning cannot make identical for these faults. Pure."""
    out = []
    for p in pinned:
        if p.entry["action"] == "kill-replica":
            node = (p.entry.get("target") or {}).get("node")
            out.append(f"{p.id}: kill-replica kills a matching replica{' on ' + node if node else ''}, chosen with a "
                       "seed drawn from its place in the method (not the original's): another replica than the "
                       "original's may die")
    return out


def candidate_experiment(base: dict[str, Any], faults: Sequence[Pinned], name: str, description: str,
                         target: str | None = None) -> Experiment:
    """The experiment running exactly ``faults``; ExperimentError when it is invalid. One that
    kills a node, or partitions one (frozen or cut off for a few seconds, Ray declares a node
    dead and its raylet exits), gets a rollback restarting every node that is down, unless it has
    one: an abort skips a restart a kill-node's ``duration_s`` planned, and the next candidate
    needs the whole cluster."""
    rollbacks = list(base.get("rollbacks") or [])
    if any(f.entry["action"] in NODE_LOSING for f in faults) and not any(
            r.get("action") == "restart-node" and (r.get("target") or {}).get("node") == "all" for r in rollbacks):
        rollbacks.append({"action": "restart-node", "target": {"node": "all"}, "only_if_down": True})
    doc = {**base, "name": name, "description": description, "method": [f.entry for f in faults],
           "rollbacks": rollbacks}
    return parse_experiment(doc, f"candidate {name}", target=target)


def experiment_yaml(exp: Experiment, header: str) -> str:
    """The experiment as YAML without its default values (the kinds of unions kept), or in full
    when the lean form would not read back the same. Pure."""
    full = exp.model_dump(mode="json")
    lean = _keep_kinds(full, exp.model_dump(mode="json", exclude_defaults=True))
    try:
        same = parse_experiment(lean) == exp
    except ChaosError:
        same = False
    body = yaml.safe_dump(lean if same else full, sort_keys=False, width=110)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body


def _keep_kinds(full: Any, lean: Any) -> Any:
    if isinstance(full, dict) and isinstance(lean, dict):
        out = {k: _keep_kinds(full[k], v) for k, v in lean.items()}
        return {"kind": full["kind"], **out} if "kind" in full and "kind" not in out else out
    if isinstance(full, list) and isinstance(lean, list) and len(full) == len(lean):
        return [_keep_kinds(f, v) for f, v in zip(full, lean, strict=True)]
    return lean


# -- judging (pure) -----------------------------------------------------------------------------


def failure_signature(journal: dict[str, Any]) -> frozenset[str]:
    """How a run failed: ``slo:NAME`` for each SLO violated in a judged window, ``abort:KIND``
    for each abort condition that fired, and FAILED_REQUESTS with an availability SLO violated or
    an abort on client failures or the burn rate (two views of one failure: which one shows
    depends on when the requests failed). Empty for a run that passed. Pure."""
    out: set[str] = set()
    for a in journal.get("aborts") or []:
        kind = (a.get("condition") or {}).get("kind")
        if kind in ABORT_CONDITIONS:
            out |= {f"abort:{kind}", FAILED_REQUESTS}
    steady = ((journal.get("experiment") or {}).get("steady_state") or {})
    for window in steady.get("judge") or ("during", "after", "whole"):
        for r in ((journal.get("steady_state") or {}).get(window) or {}).get("results") or []:
            if r.get("ok") is False:
                out.add(f"slo:{r.get('name')}")
                if r.get("kind") == "availability":
                    out.add(FAILED_REQUESTS)
    return frozenset(out)


def not_tested(journal: dict[str, Any]) -> str | None:
    """Why a run did not test its schedule (a runner error: the cluster not ready, a deploy that
    failed; the steady state not met before the faults), or None when it did. Pure."""
    for a in journal.get("aborts") or []:
        if (a.get("condition") or {}).get("kind") in UNTESTED:
            return str(a.get("reason") or a["condition"]["kind"])
    return None


def fails_like(journal: dict[str, Any], original: frozenset[str], match: str) -> bool:
    """Whether a run fails the way ``--match`` asks, against the original's signature. Pure."""
    if journal.get("verdict") not in FAILING:
        return False
    if match == "verdict":
        return True
    sig = failure_signature(journal)
    if match == "exact":
        return bool((sig & original) - {FAILED_REQUESTS})
    return bool(sig & original) if match == "same" else bool(sig)


def simplify_steps(during: tuple[float, float]) -> list[Callable[[Pinned], Pinned | None]]:
    """Shorter hold, smaller arguments, earlier start (at the start of the during window). Pure."""

    def step(edit: Callable[[dict[str, Any]], bool]) -> Callable[[Pinned], Pinned | None]:
        def apply(p: Pinned) -> Pinned | None:
            e = p.entry
            return Pinned.of(p.id, e) if edit(e) else None
        return apply

    def shorter(e: dict[str, Any]) -> bool:
        args = e.get("args") or {}
        if e.get("duration_s") and e["duration_s"] / 2 >= MIN_HOLD_S:
            e["duration_s"] = round(e["duration_s"] / 2, 1)
            return True
        if args.get("down_for_s") and args["down_for_s"] / 2 >= MIN_HOLD_S:
            args["down_for_s"] = round(args["down_for_s"] / 2, 1)
            return True
        return False

    def smaller(e: dict[str, Any]) -> bool:
        args, before = e.get("args") or {}, json.dumps(e.get("args"), sort_keys=True)
        if (args.get("cores") or 1) > 1:
            args["cores"] = 1
        for k in ("loss_pct", "delay_ms"):
            if args.get(k):
                args[k] = round(args[k] / 2, 1)
        args.pop("jitter_ms", None)
        return json.dumps(e.get("args"), sort_keys=True) != before

    def earlier(e: dict[str, Any]) -> bool:
        if e["schedule"]["at_s"] <= during[0]:
            return False
        e["schedule"]["at_s"] = during[0]
        return True

    return [step(shorter), step(smaller), step(earlier)]
