"""``serve``, ``worker`` and ``admin``: the leaderboard service."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from mosxav_leaderboard.model_runs import ModelPolicy

from mosxav_leaderboard.cli.common import (
    SERVE_EXTRA,
    ExitCode,
    add_database_options,
    console,
    database_arguments,
    need,
    out_console,
    positive_int,
    scratch_folder,
)
from mosxav_leaderboard.service.accounts import MAX_QUEUED


def cmd_serve(args: argparse.Namespace) -> int:
    need(("fastapi", "uvicorn", "python_multipart", "httpx"), SERVE_EXTRA)
    from mosxav_leaderboard.service.server import serve
    from mosxav_leaderboard.service.settings import (
        DEFAULT_MAX_UPLOAD_BYTES,
        DEFAULT_PHASES,
        Settings,
        default_scoring_workers,
        read_phases,
    )

    db, _ = database_arguments(args)
    settings = Settings(
        gt=args.gt,
        db=db,
        data=scratch_folder(args, db),
        uploads=args.uploads,
        host=args.host,
        port=args.port,
        workers=default_scoring_workers() if args.workers is None else args.workers,
        lease_seconds=args.lease_seconds,
        max_upload_bytes=args.max_upload_mb * 1024**2 if args.max_upload_mb else DEFAULT_MAX_UPLOAD_BYTES,
        public_url=args.public_url,
        trusted_proxies=args.trusted_proxies,
        team_rows=args.team_rows,
        max_queued=args.max_queued,
        phases=read_phases(args.phases) if args.phases else DEFAULT_PHASES,
        reopen=tuple(args.reopen),
        models=model_policy(args),
        model_device=args.model_device,
    )
    serve(settings)
    return ExitCode.OK


def model_policy(args: argparse.Namespace) -> ModelPolicy:
    """``--model-methods`` and the limits of one model job."""
    from mosxav.training.protocol import available_methods
    from mosxav_leaderboard.model_runs import ModelPolicy

    methods = tuple(m.strip() for m in (args.model_methods or "").split(",") if m.strip())
    unknown = sorted(set(methods) - set(available_methods()))
    if unknown:
        raise ValueError(f"--model-methods: {unknown} not registered (registered: {sorted(available_methods())})")
    return ModelPolicy(
        methods=methods,
        seconds=args.model_seconds,
        memory_bytes=int(args.model_memory_gb * 1024**3),
        weights_bytes=args.max_weights_mb * 1024**2,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    """A scoring worker of its own beside a running server: it joins through the database and the
    data folder, outlives server restarts and stops on Ctrl-C or when the ground truth changes."""
    need(("fastapi", "uvicorn", "python_multipart", "httpx"), SERVE_EXTRA)
    from mosxav_leaderboard.service.settings import Settings
    from mosxav_leaderboard.service.worker import run_worker

    db, _ = database_arguments(args)
    settings = Settings(
        gt=args.gt,
        db=db,
        data=scratch_folder(args, db),
        uploads=args.uploads,
        model_device=args.model_device,
        workers=0,
        lease_seconds=args.lease_seconds,
    )
    stopped = run_worker(settings, once=args.once)
    console.print(f"worker stopped: {stopped}")
    return ExitCode.OK if stopped in ("stopped", "idle") else ExitCode.PROBLEMS


def cmd_admin(args: argparse.Namespace) -> int:
    from mosxav_leaderboard.service.database import Database

    database = Database(database_arguments(args)[0])
    if args.action == "add-team":
        team, token = database.add_team(args.name)
        out_console.print(f"team {team.name!r} (#{team.id}) added; its token, shown only now:")
        print(token)
    elif args.action == "list-teams":
        table = Table("id", "team", "created", "revoked", "submissions")
        for row in database.list_teams():
            revoked = "yes" if row["revoked"] else "no"
            table.add_row(str(row["id"]), row["name"], row["created"], revoked, str(row["submissions"]))
        out_console.print(table)
    elif args.action == "revoke":
        database.revoke(args.name)
        out_console.print(f"token of team {args.name!r} revoked (its sessions end too)")
    elif args.action == "new-token":
        token = database.rotate_token(args.name)
        out_console.print(f"team {args.name!r}: old token revoked; the new one, shown only now:")
        print(token)
    elif args.action == "set-limit":
        database.set_limit(args.name, args.phase, args.per_day)
        out_console.print(f"team {args.name!r}: {args.per_day} submission(s) per day on the {args.phase} phase")
    elif args.action in ("hide", "unhide"):
        database.moderate(args.id, args.action == "hide", args.reason)
        out_console.print(f"row {args.id} {'hidden' if args.action == 'hide' else 'shown again'}: {args.reason}")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's sub-commands to the parser."""
    p = sub.add_parser("serve", help="run the leaderboard service (HTTP API, pages, scoring workers)")
    p.add_argument("--gt", type=Path, required=True, help="MOSXAV root with the val and (hidden) test ground truth")
    add_database_options(p, uploads=True)
    p.add_argument("--data", type=Path, default=None, help="this machine's scratch (default: beside the database)")
    p.add_argument(
        "--max-queued",
        type=positive_int,
        default=MAX_QUEUED,
        help="a team's submissions waiting or being scored at once, at most (teams' jobs take turns)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (put a reverse proxy in front)")
    p.add_argument("--port", type=int, default=8000, help="the port to listen on")
    p.add_argument("--workers", type=int, default=None, help="scoring worker processes (default: one per core but one)")
    p.add_argument("--lease-seconds", type=float, default=120.0, help="a dead worker's job is retaken after this")
    p.add_argument("--max-upload-mb", type=int, default=None, help="largest upload (default 256 MiB)")
    p.add_argument(
        "--public-url",
        default=None,
        help="the address users open when a reverse proxy serves it (e.g. https://lb.example.org): sign-in "
        "accepts that origin, cookies are Secure over https, X-Forwarded-* is trusted from --trusted-proxies",
    )
    p.add_argument("--trusted-proxies", default="127.0.0.1", help="addresses whose X-Forwarded-* headers count")
    p.add_argument("--phases", type=Path, default=None, help="phases.yaml: each phase's dates, limit and text")
    p.add_argument(
        "--reopen",
        action="append",
        default=[],
        choices=("validation", "test"),
        help="accept another close for a phase that has closed (logged); without it the service refuses to start",
    )
    p.add_argument(
        "--model-methods",
        default=None,
        metavar="NAME[,NAME]",
        help="take model submissions of these registered methods: the server predicts with them (default: none)",
    )
    p.add_argument(
        "--model-seconds",
        type=float,
        default=900.0,
        help="CPU time limit of one model's prediction, on one thread (the wall clock allows 4x that)",
    )
    p.add_argument("--model-memory-gb", type=float, default=8.0, help="memory limit of the process running a model")
    p.add_argument(
        "--max-weights-mb",
        type=int,
        default=256,
        help="largest weights file a model submission may hold (uploads: --max-upload-mb)",
    )
    p.add_argument("--model-device", default="cpu", help="where its workers run models: cpu, or cuda")
    p.add_argument(
        "--team-rows",
        choices=("best", "latest"),
        default="best",
        help="which published row of a team the public table shows per phase and fraction",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "worker", help="a scoring worker of its own: beside a server, or on another machine (PostgreSQL --db)"
    )
    p.add_argument("--gt", type=Path, required=True, help="the ground truth the server was started with")
    add_database_options(p, uploads=True)
    p.add_argument("--data", type=Path, default=None, help="this worker's scratch (default: beside the database)")
    p.add_argument("--lease-seconds", type=float, default=120.0, help="as the server's: a dead worker's job is retaken")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument("--model-device", default="cpu", help="where this worker runs submitted models: cpu, or cuda")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("admin", help="leaderboard service administration: teams, tokens, limits, hidden rows")
    add_database_options(p, uploads=False)
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add-team", help="add a team and print its API token (once)")
    a.add_argument("name", help="the team's name")
    actions.add_parser("list-teams", help="list teams")
    a = actions.add_parser("revoke", help="revoke a team's token")
    a.add_argument("name", help="the team's name")
    a = actions.add_parser("new-token", help="revoke a team's token and print a new one")
    a.add_argument("name", help="the team's name")
    a = actions.add_parser("set-limit", help="submissions per UTC day for a team and phase")
    a.add_argument("name", help="the team's name")
    a.add_argument("--phase", choices=("validation", "test"), default="test", help="the phase the limit is for")
    a.add_argument("--per-day", type=int, required=True, help="submissions a day the team may make")
    for action in ("hide", "unhide"):
        a = actions.add_parser(action, help=f"{action} a table row (the reason is kept)")
        a.add_argument("id", help="the row's id as the table shows it (a submission number, or ref-N)")
        a.add_argument("--reason", required=True, help="why, for the moderation log")
    p.set_defaults(func=cmd_admin)
