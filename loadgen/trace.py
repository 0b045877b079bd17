"""Reading recorded request times for trace replay.

Two formats: one timestamp per line (blank lines and ``#`` comments skipped; a first line
``timestamp`` is taken as a header), or a CSV whose ``timestamp`` column holds them. A timestamp
is seconds as a number (unix time or any origin) or an ISO 8601 time. Only differences matter.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from pathlib import Path

from loadgen.errors import TraceError

_VALUE_FIX = "write seconds as a number (e.g. 1712345678.25) or an ISO 8601 time (e.g. 2024-04-05T12:00:00.250Z)"


def parse_timestamp(text: str) -> float | None:
    """Seconds for a number or an ISO 8601 time; None when it is neither."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # naive times: any fixed zone gives the same differences
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def read_trace(path: str | Path) -> list[float]:
    """The file's timestamps in seconds, sorted (logs merged from several servers interleave)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(name, None, "the file does not exist", "check the path; a relative path in a profile "
                         "file is resolved against that file's folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(name, None, f"cannot read the file ({exc})", "give a UTF-8 text file") from None

    lines = text.splitlines()
    content = [(n, line) for n, line in enumerate(lines, start=1) if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        raise TraceError(name, None, "no timestamps found",
                         "put one timestamp per line, or a CSV with a 'timestamp' column")
    first = content[0][1]
    if name.lower().endswith(".csv") or "," in first:
        times = _read_csv(name, content)
    else:
        times = _read_lines(name, content)
    if not times:
        raise TraceError(name, None, "no timestamps found after the header",
                         "add one timestamp per line below the header")
    times.sort()
    return times


def _read_lines(name: str, content: list[tuple[int, str]]) -> list[float]:
    if content[0][1].strip().lower() == "timestamp":
        content = content[1:]
    times = []
    for number, line in content:
        value = parse_timestamp(line)
        if value is None:
            raise TraceError(name, number, f"{line.strip()!r} is not a timestamp", _VALUE_FIX)
        times.append(value)
    return times


def _read_csv(name: str, content: list[tuple[int, str]]) -> list[float]:
    header_line, header_text = content[0]
    header = [h.strip().lower() for h in next(csv.reader(io.StringIO(header_text)))]
    if "timestamp" not in header:
        raise TraceError(
            name, header_line,
            f"the CSV header has no 'timestamp' column (columns: {', '.join(header) or 'none'})",
            "rename the column holding the request times to 'timestamp', or give one timestamp per line",
        )
    column = header.index("timestamp")
    times = []
    for number, line in content[1:]:
        row = next(csv.reader(io.StringIO(line)))
        if column >= len(row):
            raise TraceError(name, number, f"the row has {len(row)} columns, 'timestamp' is column {column + 1}",
                             "give every row a value in the 'timestamp' column")
        value = parse_timestamp(row[column])
        if value is None:
            raise TraceError(name, number, f"{row[column].strip()!r} is not a timestamp", _VALUE_FIX)
        times.append(value)
    return times
