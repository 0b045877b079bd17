"""What can go wrong before or around a load run, each with the values involved and the fix.

Request failures during a run are not exceptions: they are data (``records.jsonl``, the summary).
"""

from __future__ import annotations


class LoadgenError(Exception):
    """Base of every error this package raises on purpose."""


class ProfileError(LoadgenError):
    """The load profile is not valid."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"load profile {source} is not valid:\n{listing}")


class SpecError(LoadgenError):
    """Options of a load run (other than the profile) are not valid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"load run options are not valid:\n{listing}")


class TraceError(LoadgenError):
    """A trace file cannot be replayed."""

    def __init__(self, path: str, line: int | None, problem: str, fix: str) -> None:
        self.path, self.line, self.problem, self.fix = path, line, problem, fix
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"trace {where}: {problem}. Fix: {fix}")


class LocustMissing(LoadgenError):
    """Locust is not installed in the Python that would run it."""

    def __init__(self, python: str) -> None:
        self.python = python
        super().__init__(
            f"locust is not importable by {python}. Fix: pip install -e '.[testbed]' (locust==2.47.0) into that Python"
        )


class TargetUnreachable(LoadgenError):
    """No target accepted a TCP connection before the run started."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        listing = "; ".join(f"{t}: {why}" for t, why in problems.items())
        super().__init__(
            f"no target is reachable ({listing}). Fix: start the server (or its proxies) first, "
            "check the addresses, or pass check_targets=False / --no-check-targets to start anyway"
        )


class LoadRunFailed(LoadgenError):
    """A Locust process failed or the run did not finish."""

    def __init__(self, what: str, log_path: str | None = None, log_tail: str = "") -> None:
        self.what, self.log_path, self.log_tail = what, log_path, log_tail
        msg = what
        if log_path:
            msg += f" (log: {log_path})"
        if log_tail:
            msg += "\n--- last lines ---\n" + log_tail
        super().__init__(msg)
