"""``python -m tune``: check a sweep, or run it (simulator, then real runs of the best).

    python -m tune validate tune/sweeps/bursty.yaml
    python -m tune run tune/sweeps/bursty.yaml --no-confirm
    python -m tune run tune/sweeps/ci_small.yaml --confirm 1 --target embedded:default

Exit status: 0 a recommendation was made, 1 none met the SLOs, 3 bad file or could not run.
Also ``serve-core tune ...`` (registered in tune/__init__.py).
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from chaos.errors import ChaosError
from serve_core.errors import ConfigError
from tune.sweep import Confirm, Sweep, SweepError, load_sweep

EXIT_ERROR = 3


def _overrides(sweep: Sweep, ns: argparse.Namespace) -> Sweep:
    """The sweep with --target and --compare applied, validated again."""
    confirm = sweep.confirm.model_dump(mode="json")
    if getattr(ns, "target", None):
        from chaos.spec.loading import parse_target

        target = parse_target(ns.target)
        if confirm["target"].get("kind") == target["kind"]:
            target = {**confirm["target"], **target}
        confirm["target"] = target
    if getattr(ns, "compare", None) is not None:
        confirm["compare"] = [c.strip() for c in ns.compare.split(",") if c.strip()]
    try:
        sweep.confirm = Confirm.model_validate(confirm)
    except ValidationError as e:
        err = e.errors()[0]
        flag = "--compare" if err["loc"][0] == "compare" else "--target"
        raise SweepError(flag, err.get("input"), err["msg"]) from None
    return sweep


def cmd_validate(ns: argparse.Namespace) -> int:
    from tune.search import arrivals, candidates

    sweep = load_sweep(ns.file)
    cands = candidates(sweep)
    times = arrivals(sweep)
    print(f"sweep {sweep.name}: {len(cands)} settings ({sweep.search.kind}), {len(times)} requests, "
          f"ranges: {', '.join(sweep.space.ranges()) or '(none)'}; confirm top {sweep.confirm.top} on "
          f"{sweep.confirm.target.kind}, compare: {', '.join(sweep.confirm.compare) or '(none)'}")
    return 0


def cmd_run(ns: argparse.Namespace) -> int:
    from tune import confirm as cf
    from tune.frontier import Point, pareto
    from tune.report import frontier_svg, write_report
    from tune.tuner import run_sweep

    sweep = _overrides(load_sweep(ns.file), ns)
    top = 0 if ns.no_confirm else ns.confirm
    runner = None if ns.no_confirm else cf.chaos_runner(ns.chaos_out)
    doc = run_sweep(sweep, confirm_top=top, runner=runner, work_dir=ns.work_dir, backend=ns.backend)
    points = [Point(c["label"], c["simulated"]["replica_seconds"], c["simulated"]["attainment"] or 0.0)
              for c in doc["ranked"]]
    met = {c["label"]: bool(c["simulated"]["all_met"]) for c in doc["ranked"]}
    rec = doc.get("recommendation") or {}
    svg = frontier_svg(points, pareto(points), met, rec.get("label"))
    path = write_report(doc, svg, ns.out)
    print(f"report: {path}/report.md")
    if rec:
        print(f"recommended {rec['label']} ({rec['basis']}):\n{rec['snippet']}")
        return 0
    print("no setting met the SLOs")
    return 1


def main(argv: list[str] | None = None, prog: str = "python -m tune") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Tune autoscaling settings against SLOs.")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check a sweep file and count its settings")
    v.add_argument("file")
    v.set_defaults(handler=cmd_validate)
    r = sub.add_parser("run", help="simulate the sweep, confirm the best with real runs, write the report")
    r.add_argument("file")
    r.add_argument("--no-confirm", action="store_true", help="the simulator only: no real run")
    r.add_argument("--confirm", type=int, default=None, help="real runs of this many best settings (default: the file's)")
    r.add_argument("--target", help="embedded:CLUSTER or compose:PROJECT (default: the file's confirm.target)")
    r.add_argument("--compare", help="comma-separated baselines (serve_core_defaults,ray_serve_defaults,fixed_peak); "
                                     "'' for none (default: the file's)")
    r.add_argument("--backend", choices=["serve_core", "ray_serve"], default="serve_core",
                   help="what serves the candidates' real runs (the baselines keep their own)")
    r.add_argument("--out", default="reports/tune", help="where report directories go")
    r.add_argument("--chaos-out", default="reports/tune/runs", help="where the real runs' chaos journals go")
    r.add_argument("--work-dir", default="reports/tune/work", help="where the generated serve configs go")
    r.set_defaults(handler=cmd_run)
    ns = p.parse_args(argv)
    try:
        return int(ns.handler(ns))
    except (ConfigError, ChaosError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
