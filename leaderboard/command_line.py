"""The ``mosxav-bench`` command line: one sub-command per job, errors as one readable line.

The commands live in ``mosxav_leaderboard.cli`` (one module per group, each command beside its
options). Conventions: inputs are positional, outputs ``--out``; ``--jobs N`` is the number of
processes sharing one computation; exit codes are ``cli.common.ExitCode``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence

from rich.markup import escape

from mosxav import toolkit_version
from mosxav.errors import DataError
from mosxav_leaderboard.cli import board, data, runs, service
from mosxav_leaderboard.cli.common import ExitCode, HelpFormatter, MissingExtra, console


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mosxav-bench",
        description="MOSXAV-Bench: data, metrics, training and the leaderboard.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {toolkit_version()}")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=functools.partial(argparse.ArgumentParser, formatter_class=HelpFormatter),
    )
    for group in (runs, board, service, data):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(handler(args))
    except (DataError, FileExistsError, ValueError, MissingExtra) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)  # one line, [brackets] as text
        return ExitCode.ERROR
    except KeyboardInterrupt:
        console.print("interrupted", soft_wrap=True)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader left (``mosxav-bench leaderboard | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return ExitCode.OK
    except Exception as exc:
        if not _unreachable_database(exc):
            raise
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        console.print(f"[red]error:[/red] could not open the database: {escape(reason)}", soft_wrap=True)
        return ExitCode.ERROR


def _unreachable_database(exc: BaseException) -> bool:
    """SQLAlchemy's OperationalError (a server not there, refusing, a wrong password), without importing
    SQLAlchemy for commands that never open a database."""
    return any(cls.__name__ == "OperationalError" and cls.__module__ == "sqlalchemy.exc" for cls in type(exc).__mro__)


if __name__ == "__main__":
    sys.exit(main())
