"""What every sub-command shares: the consoles, the exit codes, and the one-line messages for a
missing extra and a refused submission."""

from __future__ import annotations

import argparse
import enum
import importlib.util
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

#: Width of a console that is not a terminal (a pipe, a log): no terminal's width to fit, so a table is
#: printed at its natural width and a line is never wrapped or cut.
LOG_WIDTH = 1000


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=LOG_WIDTH)


console = _console(stderr=True)
out_console = _console()


def uncut_table(*headers: str, title: str | None = None, rows: list[list[str]] | None = None) -> Table:
    """A table whose cells are folded, never cut, when a terminal is narrow: text columns wrap, and
    columns whose every value is short stay whole (their width is their longest value)."""
    rows = rows or []
    table = Table(title=title)
    for k, header in enumerate(headers):
        values = [row[k] for row in rows]
        short = all(len(v) <= 24 for v in values)
        width = max([len(header), *(len(v) for v in values)]) if short else None
        table.add_column(header, overflow="fold", no_wrap=short, min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


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
    #: Stopped by Ctrl-C (128 + SIGINT, as a shell reports it); what was kept is said on stderr.
    INTERRUPTED = 130


SERVE_EXTRA = (
    "the leaderboard service needs the [serve] extra: bash scripts/install.sh --serve "
    "(or pip install 'mosxav-bench[serve]')"
)
CLIENT_EXTRA = "submitting to a server needs httpx: pip install httpx (or the [serve] extra)"


class MissingExtra(RuntimeError):
    """An optional dependency a command needs is not installed."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--jobs 0`` is a mistake, not a default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one its help does not already state."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        quiet = any(action.default is value for value in (None, False, argparse.SUPPRESS)) or "default" in text
        if quiet or action.option_strings == [] and action.nargs is None:
            return text
        return f"{text} (default: %(default)s)"


def need(modules: tuple[str, ...], message: str) -> None:
    """A missing optional dependency as one line saying which extra to install."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{message} (missing: {', '.join(missing)})")


def print_problems(problems: list[tuple[str, str]], title: str = "submission refused") -> None:
    """Every problem, one row each (the command then exits ``ExitCode.PROBLEMS``)."""
    table = Table("file", "problem", title=f"{title}: {len(problems)} problem(s)")
    for path, message in problems:
        table.add_row(path, message)
    out_console.print(table)


DB_HELP = (
    "the leaderboard database: a SQLite file (default: $MOSXAV_HOME/leaderboard/leaderboard.sqlite) or a "
    "PostgreSQL URL, postgresql://USER@HOST/NAME (the password from PGPASSWORD or ~/.pgpass, never the URL)"
)
UPLOADS_HELP = (
    "the folder every machine of the service shares: uploads arrive in it and, with a PostgreSQL database, "
    "scored predictions are kept in it (default: DATA/uploads)"
)


def add_database_options(parser: argparse.ArgumentParser, *, uploads: bool) -> None:
    """``--db PATH|URL`` (and ``--uploads DIR``, the shared folder), the same on every command that opens it."""
    parser.add_argument("--db", default=None, metavar="PATH|URL", help=DB_HELP)
    if uploads:
        parser.add_argument("--uploads", type=Path, default=None, metavar="DIR", help=UPLOADS_HELP)


def database_arguments(args: argparse.Namespace) -> tuple[str | Path, Path | None]:
    """The database (``--db`` or the default file) and the folder its store keeps predictions in
    (``--uploads`` with a database server; the file's folder for SQLite)."""
    from mosxav_leaderboard.board import default_db
    from mosxav_leaderboard.store import predictions_home_for

    db = args.db or default_db()
    warn_of_password(db)
    return db, predictions_home_for(db, getattr(args, "uploads", None))


def warn_of_password(db: str | Path) -> None:
    """A password in ``--db`` is in the command line every user of the machine reads (``ps``): say so,
    and where it goes instead (libpq, and so psycopg, reads ``PGPASSWORD`` and ``~/.pgpass``)."""
    if isinstance(db, str) and "://" in db:
        from sqlalchemy.engine import make_url

        if make_url(db).password:
            console.print(
                "warning: the password in --db is visible to every user of this machine (ps); leave it out of "
                "the URL and set PGPASSWORD or a ~/.pgpass file (docs/service.md)",
                soft_wrap=True,
            )


def scratch_folder(args: argparse.Namespace, db: str | Path) -> Path:
    """``--data``, or ``service/`` beside a SQLite file (beside the default one for a database server)."""
    from mosxav_leaderboard.board import default_db
    from mosxav_leaderboard.engine import sqlite_file

    if args.data is not None:
        return args.data
    return (sqlite_file(db) or default_db()).parent / "service"


def team_token(args: argparse.Namespace) -> str:
    """``--token`` or ``$MOSXAV_TOKEN``."""
    token = args.token or os.environ.get("MOSXAV_TOKEN")
    if not token:
        raise ValueError("--server needs --token T (or the MOSXAV_TOKEN environment variable)")
    return token
