"""One exception type for every problem with data on disk, always naming the file."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A file or folder does not hold what MOSXAV-Bench expects.

    The message always starts with the path, so a user can open the file in question.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
