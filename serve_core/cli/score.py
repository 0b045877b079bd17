"""`serve-core score`: a dataset through a running deployment in mini-batches, resumable
(the driver side of ``serve_core.patterns.batch_scoring``)."""

from __future__ import annotations

import argparse
import sys

from serve_core.cli.apps import add_address


def cmd_score(ns: argparse.Namespace) -> int:
    from serve_core import api, ray_seam
    from serve_core.patterns import batch_scoring

    files = batch_scoring.input_files(ns.input)
    ray_seam.connect(ns.address)
    handle = (api.get_deployment_handle(ns.deployment, ns.app) if ns.deployment else api.get_app_handle(ns.app))
    handle = handle.options(method_name=ns.method)
    s = batch_scoring.score(batch_scoring.read_jsonl(files), handle, ns.out, batch_size=ns.batch_size,
                            concurrency=ns.concurrency, retries=ns.retries)
    print(f"scored {s.scored} item(s) in {s.seconds:.1f}s; {s.skipped} already done; {s.failed} failed; "
          f"{s.total} in the input; results in {ns.out}", flush=True)
    if s.failed:
        print(f"error: {s.failed} item(s) failed (see {ns.out}.errors.jsonl); run the same command again "
              "to score them", file=sys.stderr)
    return 0 if s.complete else 1


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sc = sub.add_parser("score", help="score a dataset through a running deployment in mini-batches (resumable)",
                        description="Each line of the .jsonl input (a file or a directory of them) is an item; the "
                                    "method gets a list of items and returns a list of results. Results go to --out "
                                    "as each batch finishes; run again after a failure to score only what is left.")
    sc.add_argument("input", help="a .jsonl file, or a directory of .jsonl files")
    sc.add_argument("--app", default="default", help="application name (default: default)")
    sc.add_argument("--deployment", help="a deployment of the app (default: its ingress)")
    sc.add_argument("--method", default="__call__", help="the method taking a list of items (default: __call__)")
    sc.add_argument("--out", required=True, help="results, one JSON line per item (appended, resumed)")
    sc.add_argument("--batch-size", type=int, default=32)
    sc.add_argument("--concurrency", type=int, default=4, help="batches in flight (default 4)")
    sc.add_argument("--retries", type=int, default=2, help="retries of a failed batch (default 2)")
    add_address(sc)
    sc.set_defaults(handler=cmd_score)
