"""What every sub-command shares: the consoles, the exit codes, and the one-line messages for a
missing extra and a refused submission."""

from __future__ import annotations

import argparse
import enum
import importlib.util
import os

from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
out_console = Console()


class ExitCode(enum.IntEnum):
    """What ``mosxav-bench`` exits with (the README's *Command line* lists them)."""

    OK = 0
    #: The command ran and found problems: ``check`` errors, a submission refused (every problem
    #: listed), a server's refusal, a worker stopped by a change of ground truth.
    PROBLEMS = 1
    #: The command could not run: bad arguments, unreadable input, a missing extra (one line on stderr).
    ERROR = 2
    #: A submission identical to one already recorded (nothing recorded).
    DUPLICATE = 3
    #: ``submit --wait`` gave up while the submission is still being scored (check later by its id).
    PENDING = 4


SERVE_EXTRA = (
    "the leaderboard service needs the [serve] extra: bash scripts/install.sh --serve "
    "(or pip install 'mosxav-bench[serve]')"
)
CLIENT_EXTRA = "submitting to a server needs httpx: pip install httpx (or the [serve] extra)"


class MissingExtra(RuntimeError):
    """An optional dependency a command needs is not installed."""


def need(modules: tuple[str, ...], message: str) -> None:
    """A missing optional dependency as one line saying which extra to install."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{message} (missing: {', '.join(missing)})")


def print_problems(problems: list[tuple[str, str]]) -> None:
    table = Table("file", "problem", title=f"submission refused: {len(problems)} problem(s)")
    for path, message in problems:
        table.add_row(path, message)
    out_console.print(table)


def team_token(args: argparse.Namespace) -> str:
    """``--token`` or ``$MOSXAV_TOKEN``."""
    token = args.token or os.environ.get("MOSXAV_TOKEN")
    if not token:
        raise ValueError("--server needs --token T (or the MOSXAV_TOKEN environment variable)")
    return token
