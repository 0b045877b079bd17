"""The errors the chaos package raises on purpose: ``ChaosError`` at the root, and
``ExperimentError`` holding one or more ``Problem``s (where, what value, how to fix it, and
for a file the line), so a message names the field path, the bad value and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ChaosError(Exception):
    """Base class for every error the chaos package raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an experiment: where, what value, how to fix it."""

    path: str
    value: object
    fix: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        if self.value is NO_VALUE:
            return f"{where}invalid {self.path}: {self.fix}"
        value = "(missing)" if self.value is MISSING else _short(self.value)
        return f"{where}invalid {self.path}={value}: {self.fix}"


class ExperimentError(ChaosError, ValueError):
    """An experiment document is invalid (or cannot be read)."""

    def __init__(self, problems: Problem | list[Problem], source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.source = source
        super().__init__(str(self))

    @property
    def path(self) -> str:
        return self.problems[0].path

    @property
    def value(self) -> object:
        return self.problems[0].value

    @property
    def fix(self) -> str:
        return self.problems[0].fix

    def __str__(self) -> str:
        head = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            return head + str(self.problems[0])
        return head + f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING: Any = _Missing()
NO_VALUE: Any = object()  # a Problem about the whole document or file, with no value to show


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
