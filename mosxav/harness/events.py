"""A run's progress as plain lines: a header, then one line per cell started and scored, with the count
and an estimate of the time left.

The bars of ``rich`` show a terminal what each cell is doing, but where output is not a terminal (CI,
``nohup``, SLURM, ``tee``) they print nothing until the end. These lines go through the same console
(above the bars on a terminal, as they come in a log), so both readers see the run move.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mosxav.harness.plan import CellPlan


class CellEvents:
    """Prints a run's header and its cell events on ``console`` (anything with ``print``)."""

    def __init__(self, console: Any, plans: Sequence[CellPlan], run_dir: Path, jobs: int) -> None:
        self.console = console
        self.total = len(plans)
        self.cost = {plan.tag: max(plan.cost, 1.0) for plan in plans}  # cells weighed by their training cost
        self.left = sum(self.cost.values())
        self.done = 0
        self.started = time.monotonic()
        trained = sum(1 for plan in plans if plan.trained)
        console.print(
            f"run {run_dir}: {self.total} cell(s), {trained} to train, {jobs} at a time",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def start(self, tag: str) -> None:
        self._line(f"start {tag}")

    def finish(self, tag: str) -> None:
        self.done += 1
        self.left -= self.cost.get(tag, 0.0)
        self._line(f"scored {tag}")

    def _line(self, what: str) -> None:
        elapsed = time.monotonic() - self.started
        spent = sum(self.cost.values()) - self.left
        estimate = ""
        if self.done and spent > 0 and self.left > 0:
            estimate = f", about {_minutes(elapsed / spent * self.left)} left"
        self.console.print(
            f"[{self.done}/{self.total}] {what} ({_minutes(elapsed)} elapsed{estimate})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
