"""A run's progress as plain lines: a header, one line per cell started and scored, with the count
and an estimate of the time left, and, where output is not a terminal, a heartbeat per running cell
about once a minute (its step, loss and rate).

The bars of ``rich`` show a terminal what each cell is doing, but where output is not a terminal (CI,
``nohup``, SLURM, ``tee``) they print nothing until the end. These lines go through the same console
(above the bars on a terminal, as they come in a log), so both readers see the run move. The estimate
counts the running cells' finished steps, so it does not jump when a long cell ends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mosxav.harness.plan import CellPlan

#: Seconds between two heartbeat lines of one cell (logs only: a terminal has its bars).
HEARTBEAT_SECONDS = 60.0


class CellEvents:
    """Prints a run's header and its cell events on ``console`` (anything with ``print``)."""

    def __init__(
        self, console: Any, plans: Sequence[CellPlan], run_dir: Path, jobs: int, heartbeat: float | None = None
    ) -> None:
        self.console = console
        self.total = len(plans)
        self.cost = {plan.tag: max(plan.cost, 1.0) for plan in plans}  # cells weighed by their training cost
        self.left = sum(self.cost.values())
        self.done = 0
        self.started = time.monotonic()
        if heartbeat is None:
            heartbeat = None if getattr(console, "is_terminal", False) else HEARTBEAT_SECONDS
        self.heartbeat = heartbeat
        self.fraction: dict[str, float] = {}  # running cells: the share of their steps done
        self.last_beat: dict[str, float] = {}
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
        self.fraction.pop(tag, None)
        self._line(f"scored {tag}")

    def step(self, tag: str, completed: float, total: float, description: str) -> None:
        """A running cell's progress (the trainer's bar update): kept for the estimate, and printed as a
        heartbeat line when ``heartbeat`` seconds have passed since the cell's last one."""
        self.fraction[tag] = min(1.0, completed / total) if total else 0.0
        if self.heartbeat is None:
            return
        now = time.monotonic()
        if now - self.last_beat.setdefault(tag, now) >= self.heartbeat:
            self.last_beat[tag] = now
            self._line(f"{tag} step {completed:.0f}/{total:.0f}: {description}")

    def _line(self, what: str) -> None:
        elapsed = time.monotonic() - self.started
        running = sum(self.cost.get(tag, 0.0) * share for tag, share in self.fraction.items())
        spent = sum(self.cost.values()) - self.left + running
        left = self.left - running
        estimate = ""
        if (self.done or running) and spent > 0 and left > 0:
            estimate = f", about {_minutes(elapsed / spent * left)} left"
        self.console.print(
            f"[{self.done}/{self.total}] {what} ({_minutes(elapsed)} elapsed{estimate})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


class BeatingProgress:
    """A trainer's progress display that also tells ``events`` of each update (the one-process path of
    ``run``; worker processes reach the events through ``mosxav.harness.parallel``)."""

    def __init__(self, progress: Any, events: CellEvents, tag: str) -> None:
        self.progress, self.events, self.tag = progress, events, tag
        self.total = 0.0

    def add_task(self, description: str, total: float, completed: float = 0) -> Any:
        self.total = total
        return self.progress.add_task(description, total=total, completed=completed)

    def update(self, task: Any, completed: float, description: str) -> None:
        self.progress.update(task, completed=completed, description=description)
        self.events.step(self.tag, completed, self.total, description)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
