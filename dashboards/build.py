"""Write the dashboards and Grafana's provisioning files from their declarations.

``python -m dashboards.build`` (re)writes, relative to this package:

- ``grafana/NAME.json``: one Grafana dashboard per ``definitions.all_dashboards()`` entry;
- ``provisioning/datasources/prometheus.yaml``: the Prometheus data source;
- ``provisioning/dashboards/serve-core.yaml``: the provider that loads ``grafana/``.

``--check`` writes nothing and exits 1 if a checked-in file differs from what would be written.
``--out DIR`` writes the same tree elsewhere, and ``--prometheus-url`` points the data source at
another Prometheus (for example the embedded cluster's, ``http://10.77.0.1:9391``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from dashboards import provision
from dashboards.definitions import all_dashboards
from dashboards.grafana_model import Dashboard

HERE = Path(__file__).resolve().parent
DASHBOARD_DIR = "grafana"
DATASOURCE_FILE = "provisioning/datasources/prometheus.yaml"
PROVIDER_FILE = "provisioning/dashboards/serve-core.yaml"
UID_PREFIX = "serve-core-"


def file_name(d: Dashboard) -> str:
    return f"{DASHBOARD_DIR}/{d.uid.removeprefix(UID_PREFIX)}.json"


def render(prometheus_url: str = provision.DEFAULT_PROMETHEUS_URL) -> dict[str, str]:
    """Every generated file: relative path -> text."""
    files = {file_name(d): json.dumps(d.to_json(), indent=2) + "\n" for d in all_dashboards()}

    def doc(data: object) -> str:
        return provision.HEADER + yaml.safe_dump(data, sort_keys=False, width=1000)

    files[DATASOURCE_FILE] = doc(provision.datasources(prometheus_url))
    files[PROVIDER_FILE] = doc(provision.dashboard_providers())
    return files


def stale(root: Path, files: dict[str, str]) -> list[str]:
    """Dashboard files under ``root/grafana`` that the generator no longer writes."""
    folder = root / DASHBOARD_DIR
    present = sorted(f"{DASHBOARD_DIR}/{p.name}" for p in folder.glob("*.json")) if folder.is_dir() else []
    return [p for p in present if p not in files]


def differences(root: Path, files: dict[str, str]) -> list[str]:
    out = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            out.append(f"{rel}: missing")
        elif path.read_text() != text:
            out.append(f"{rel}: differs")
    out += [f"{rel}: no longer generated" for rel in stale(root, files)]
    return out


def write(root: Path, files: dict[str, str]) -> list[str]:
    changed = []
    for rel in stale(root, files):
        (root / rel).unlink()
        changed.append(f"removed {rel}")
    for rel, text in files.items():
        path = root / rel
        if path.exists() and path.read_text() == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        changed.append(f"wrote {rel}")
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    p.add_argument("--out", type=Path, default=HERE, help=f"where to write (default {HERE})")
    p.add_argument("--prometheus-url", default=provision.DEFAULT_PROMETHEUS_URL,
                   help=f"the data source's URL (default {provision.DEFAULT_PROMETHEUS_URL})")
    ns = p.parse_args(argv)
    files = render(ns.prometheus_url)
    if ns.check:
        diffs = differences(ns.out, files)
        for d in diffs:
            print(d)
        if diffs:
            print("run `python -m dashboards.build` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(files)} files up to date")
        return 0
    changed = write(ns.out, files)
    for c in changed:
        print(c)
    panels = sum(len(d.panels()) for d in all_dashboards())
    print(f"{len(all_dashboards())} dashboards, {panels} panels; {len(changed)} file(s) changed under {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
