"""The two ways a problem with input is reported, both naming the file.

``DataError`` stops the work at the first problem (reading one frame, one config). ``Problem`` is one
entry of a report that collects every problem before answering (``mosxav-bench check``, a leaderboard
submission), so a user fixes everything in one round.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """A file or folder does not hold what MOSXAV-Bench expects.

    The message always starts with the path, so a user can open the file in question.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class Problem:
    """One problem in a report: the file (a path, or a name inside a submission), what is wrong, how bad."""

    path: str | Path
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"[{self.severity}] "
        return f"{prefix}{self.path}: {self.message}"
