"""Write README.md's "What is supported" table from the API comparison with the installed
Ray Serve and tests/api_surface/decisions.yaml.

    python scripts/supported_table.py          # rewrite the table in README.md
    python scripts/supported_table.py --check  # exit 1 if README.md's table is stale
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api_surface import surface  # noqa: E402

README = ROOT / "README.md"


def render(readme: str) -> str:
    start, end = readme.find(surface.BEGIN), readme.find(surface.END)
    if start < 0 or end < 0:
        raise SystemExit(f"README.md has no generated-table markers ({surface.BEGIN!r} ... {surface.END!r})")
    return readme[:start] + surface.table() + readme[end + len(surface.END):]


def main() -> int:
    current = README.read_text()
    wanted = render(current)
    if "--check" in sys.argv[1:]:
        if wanted != current:
            print("README.md's supported table is stale: run python scripts/supported_table.py")
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
