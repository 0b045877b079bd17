"""The cross-field checks of an experiment: everything one field cannot check alone (times
inside the windows, the load lasting the whole run, selectors valid for the action, names of
nodes, arguments per action, SLOs the backend can evaluate). Pure: an ``Experiment`` in, the
``Problem``s found out.
"""

from __future__ import annotations

import difflib
import os

from chaos.errors import NO_VALUE, Problem
from chaos.spec.experiment import (
    ACTION_ARGS,
    CLUSTER_ACTIONS,
    EVERY_NODE,
    EVERY_WORKER,
    HOLD_ACTIONS,
    NODE_ACTIONS,
    PROXY_WORDS,
    SELECTOR_WORDS,
    BurnRateAbort,
    Experiment,
    Fault,
)
from loadgen.profile import Trace


def check_experiment(exp: Experiment) -> list[Problem]:
    """Everything one field cannot check alone. Pure; returns the problems found."""
    out: list[Problem] = []
    run_s = exp.run_s
    windows = f"before_s+during_s+after_s = {run_s:g}"
    profile = exp.load.profile
    if isinstance(profile, Trace) and profile.duration_s is None:
        out.append(Problem("load.profile.duration_s", None, f"set it for an experiment: the run lasts {windows}s"))
    elif profile.duration_s is not None and profile.duration_s + 1e-9 < run_s:
        out.append(Problem("load.profile.duration_s", profile.duration_s,
                           f"the load must last the whole run ({windows}s): set it to {run_s:g} or shorten the windows"))

    app = exp.application
    if app.deploys(exp.backend) is None:
        out.append(Problem(f"application.import_paths.{exp.backend}", None,
                           f"nothing to deploy with backend {exp.backend}: add an import path or a config for it "
                           "(application.import_paths / configs), or set application.import_path"))

    nodes = exp.node_names()
    for i, n in enumerate(exp.load.proxies):
        if n not in nodes and n not in PROXY_WORDS:
            out.append(Problem(f"load.proxies[{i}]", n, f"not a node of the target: use {', '.join(PROXY_WORDS)} "
                                                        f"or node names ({', '.join(nodes)})"))

    start, end = exp.during
    during = f"the during window [{start:g}, {end:g}) s (before_s={exp.steady_state.before_s:g}, " \
             f"during_s={exp.steady_state.during_s:g})"
    for i, fault in enumerate(exp.method):
        out += _check_fault(exp, i, fault, start, end, during, nodes)

    for i, rb in enumerate(exp.rollbacks):
        p = f"rollbacks[{i}].target"
        if rb.action == "redeploy":
            if rb.target.node or rb.target.deployment or rb.target.app:
                out.append(Problem(p, rb.target.describe(), "redeploy takes no target: remove it"))
            continue
        if rb.target.deployment or rb.target.app:
            out.append(Problem(p, rb.target.describe(), f"{rb.action} acts on nodes: give only node"))
        if not rb.target.node:
            out.append(Problem(f"{p}.node", None, f"{rb.action} needs node: a name, worker, all, random-worker or any"))
        else:
            out += _check_node(f"{p}.node", rb.target.node, nodes)

    out += _check_slos(exp)
    if app.payload_name is not None:
        out += _check_payload_name(app.payload_name)

    for i, cond in enumerate(exp.abort):
        if isinstance(cond, BurnRateAbort) and cond.objective is None and exp.availability_objective() is None:
            out.append(Problem(f"abort[{i}].objective", None, "no availability SLO to take it from: give objective "
                                                              "(e.g. 0.999) or add an availability SLO"))
    return out


def _check_slos(exp: Experiment) -> list[Problem]:
    """What the SLO module says it cannot evaluate for this backend (when it is installed)."""
    try:
        from chaos.slo.queries import SLOError, check_slos
    except ImportError:  # pragma: no cover - the SLO module ships with this package
        return []
    try:
        check_slos(exp.steady_state.slos, exp.backend)
    except SLOError as e:
        return [Problem("steady_state.slos", NO_VALUE, str(e))]
    return []


def _check_payload_name(name: str) -> list[Problem]:
    try:
        from loadgen.errors import SpecError
        from loadgen.payloads import example
    except ImportError:  # pragma: no cover - loadgen ships with this package
        return []
    try:
        example(name)
    except SpecError as e:
        return [Problem("application.payload_name", name, "; ".join(getattr(e, "problems", None) or [str(e)]))]
    return []


def _check_fault(exp: Experiment, i: int, fault: Fault, start: float, end: float, during: str,
                 nodes: list[str]) -> list[Problem]:
    out: list[Problem] = []
    p = f"method[{i}]"
    action, sel, sched = fault.action, fault.target, fault.schedule
    # the target
    if action in CLUSTER_ACTIONS:
        if sel.node not in (None, "head") or sel.deployment or sel.app:
            out.append(Problem(f"{p}.target", sel.describe(), f"{action} has one target per cluster: remove target"))
    elif action in NODE_ACTIONS:
        if sel.deployment or sel.app:
            out.append(Problem(f"{p}.target", sel.describe(), f"{action} acts on a node: give only node "
                                                              "(deployment and app go with kill-replica)"))
        if not sel.node:
            out.append(Problem(f"{p}.target.node", None, f"{action} needs a node: a name ({', '.join(nodes)}), "
                                                         "worker, all, random-worker or any"))
        else:
            out += _check_node(f"{p}.target.node", sel.node, nodes)
    else:  # kill-replica
        if sel.node in (EVERY_WORKER, EVERY_NODE):
            out.append(Problem(f"{p}.target.node", sel.node, "kill-replica kills one replica: use random-worker, any "
                                                             "or a node name (add more faults for more kills)"))
        elif sel.node:
            out += _check_node(f"{p}.target.node", sel.node, nodes)
    # the arguments
    allowed = ACTION_ARGS[action]
    for arg in fault.args.given():
        if arg not in allowed:
            takes = f"takes {', '.join(sorted(allowed))}" if allowed else "takes no args"
            users = [a for a, names in ACTION_ARGS.items() if arg in names]
            out.append(Problem(f"{p}.args.{arg}", getattr(fault.args, arg),
                               f"{action} {takes}; remove it ({arg} goes with {', '.join(users)})"))
    if action == "deploy" and not fault.args.config:
        out.append(Problem(f"{p}.args.config", None, "deploy needs config: the serve config YAML to apply"))
    elif action == "deploy" and not os.path.isfile(fault.args.config or ""):
        out.append(Problem(f"{p}.args.config", fault.args.config, "no such file: give a serve config YAML path "
                                                                 "(relative to where the run starts)"))
    if action == "netem" and not any((fault.args.delay_ms, fault.args.jitter_ms, fault.args.loss_pct)):
        out.append(Problem(f"{p}.args", fault.args.given(), "netem needs loss_pct, delay_ms or both"))
    # how long it lasts
    if fault.duration_s is not None and action not in HOLD_ACTIONS | {"kill-node"}:
        hint = "; for kill-gcs use args.down_for_s" if action == "kill-gcs" else ""
        out.append(Problem(f"{p}.duration_s", fault.duration_s,
                           f"{action} is instantaneous: remove duration_s (it goes with partition, netem, cpu-burn, "
                           f"and kill-node to restart the node after it){hint}"))
    if action == "cpu-burn" and fault.duration_s is None:
        out.append(Problem(f"{p}.duration_s", None, "cpu-burn needs duration_s (seconds of burning)"))
    length = fault.length_s
    # the schedule
    s = f"{p}.schedule"
    first, last, _ = fault.start_bounds((start, end))
    if sched.at_s is not None:
        out += _check_time(f"{s}.at_s", sched.at_s, start, end, during)
    else:
        if sched.start_s is not None:
            out += _check_time(f"{s}.start_s", sched.start_s, start, end, during)
        if sched.end_s is not None and not start <= sched.end_s <= end:
            out.append(Problem(f"{s}.end_s", sched.end_s, f"must be inside {during}"))
        if sched.every_s is not None:
            if length > sched.every_s:
                out.append(Problem(f"{s}.every_s", sched.every_s, f"shorter than the fault ({length:g}s): one would "
                                                                 "start before the last ended; lengthen every_s"))
            times = sched.every_times((start, end))
            if len(times) < 2 and last > first:
                out.append(Problem(f"{s}.every_s", sched.every_s, f"longer than the window [{first:g}, {last:g}] s: "
                                                                 "the fault would run once; use at_s or widen it"))
            last = times[-1] if times else first
        rnd = sched.random
        if rnd is not None:
            room = last - first
            if room < 0:
                out.append(Problem(f"{s}.start_s", first, f"a fault lasting {length:g}s cannot start in [{first:g}, "
                                                          f"{last + length:g}] s and end inside {during}: widen the "
                                                          "window or shorten the fault"))
            elif rnd.count is not None and (rnd.count - 1) * fault.random_gap_s > room:
                gap = fault.random_gap_s
                why = f" (min_gap_s, or the fault's {length:g}s: they never overlap)" if length else ""
                out.append(Problem(f"{s}.random.{'count' if length > rnd.min_gap_s else 'min_gap_s'}",
                                   rnd.count if length > rnd.min_gap_s else rnd.min_gap_s,
                                   f"{rnd.count} faults {gap:g}s apart{why} do not fit in [{first:g}, {last:g}] "
                                   "s: lower count or min_gap_s, or widen the window"))
            last = first  # random times end inside the window by construction
    if length and sched.random is None and last + length > end + 1e-9:
        what = "args.down_for_s" if action == "kill-gcs" else "duration_s"
        out.append(Problem(f"{p}.{what}", length,
                           f"the fault would last until {last + length:g}s, past the end of {during}: shorten "
                           f"{what.split('.')[-1]}, start it earlier, or lengthen during_s"))
    return out


def _check_time(path: str, t: float, start: float, end: float, during: str) -> list[Problem]:
    if start <= t < end:
        return []
    return [Problem(path, t, f"must be inside {during}: times count from the start of the load")]


def _check_node(path: str, node: str, nodes: list[str]) -> list[Problem]:
    if node in SELECTOR_WORDS or node in nodes:
        return []
    close = difflib.get_close_matches(node, list(nodes) + list(SELECTOR_WORDS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return [Problem(path, node, f"no such node{hint}: the target has {', '.join(nodes)}; or use "
                                f"{', '.join(SELECTOR_WORDS)}")]
