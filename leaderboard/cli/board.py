"""``submit``, ``leaderboard`` and ``publish``: submissions and the table."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from mosxav.data.files import write_text
from mosxav_leaderboard.cli.common import (
    CLIENT_EXTRA,
    ExitCode,
    add_database_options,
    console,
    database_arguments,
    need,
    out_console,
    print_problems,
    team_token,
)
from mosxav_leaderboard.columns import PROVENANCES


def cmd_submit(args: argparse.Namespace) -> int:
    if args.server is not None:
        return _submit_to_server(args)
    if args.gt is None:
        raise ValueError(
            "give --gt ROOT (score locally, as an operator) or --server URL --token T (submit to a server)"
        )
    from mosxav_leaderboard.board import submit
    from mosxav_leaderboard.store import DuplicateSubmission, Store
    from mosxav_leaderboard.submission import SubmissionInvalid

    store = Store(*database_arguments(args))
    try:
        with console.status(f"validating and scoring {args.path}"):
            submission_id = submit(args.path, args.gt, store, split=args.split, dataset=args.dataset)
    except SubmissionInvalid as exc:
        print_problems([(str(p.path), p.message) for p in exc.problems])
        return ExitCode.PROBLEMS
    except DuplicateSubmission as exc:
        console.print(f"[yellow]not recorded:[/yellow] {exc}")
        return ExitCode.DUPLICATE
    out_console.print(f"recorded submission #{submission_id} in {store.where}")
    return ExitCode.OK


def _submit_to_server(args: argparse.Namespace) -> int:
    need(("httpx",), CLIENT_EXTRA)
    from mosxav_leaderboard.service import client

    token = team_token(args)
    try:
        kind = "model" if args.model else "predictions"
        submission_id = client.upload(args.server, token, args.path, args.phase, show_progress=True, kind=kind)
        out_console.print(f"submission #{submission_id} queued on {args.server}")
        if not args.wait:
            return ExitCode.OK
        with console.status(f"waiting for submission #{submission_id} to be scored"):
            answer = client.wait(args.server, token, submission_id)
    except client.ServerRefused as exc:
        console.print(f"[red]refused:[/red] {exc}")
        return ExitCode.PROBLEMS
    if answer["status"] == "failed":
        print_problems([(p["path"], p["message"]) for p in answer.get("problems", [])])
        return ExitCode.PROBLEMS
    if answer["status"] != "scored":
        console.print(f"[yellow]still {answer['status']}[/yellow]: check later with the id #{submission_id}")
        return ExitCode.PENDING
    row = answer["row"]
    table = Table("metric", "value", title=f"submission #{submission_id} ({answer['phase']} phase)")
    for key in ("method", "labeled_fraction", "dice", "dice_lo", "dice_hi", "iou", "hd95", "assd"):
        table.add_row(key, str(row.get(key)))
    out_console.print(table)
    return ExitCode.OK


def cmd_publish(args: argparse.Namespace) -> int:
    need(("httpx",), CLIENT_EXTRA)
    from mosxav_leaderboard.service import client

    token = team_token(args)
    try:
        client.publish(args.server, token, args.id, not args.withdraw)
    except client.ServerRefused as exc:
        console.print(f"[red]refused:[/red] {exc}")
        return ExitCode.PROBLEMS
    out_console.print(f"submission #{args.id} {'withdrawn from' if args.withdraw else 'published on'} {args.server}")
    return ExitCode.OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mosxav.evaluation.metrics import METRIC_VERSION
    from mosxav_leaderboard.board import build_table, rescore_stale
    from mosxav_leaderboard.render import to_csv, to_html, to_json, to_markdown, to_rich
    from mosxav_leaderboard.store import Store

    store = Store(*database_arguments(args))
    if args.gt is not None:
        rescored = rescore_stale(store, args.gt)
        if rescored:
            console.print(f"re-scored {len(rescored)} submission(s) under metric version {METRIC_VERSION}")
    table, stale = build_table(
        store, label_fraction=args.labeled_fraction, by_structure=args.by_structure or args.format == "html"
    )
    if args.provenance is not None and not table.empty:
        table = table[table["provenance"] == args.provenance].reset_index(drop=True)  # ranks stay as ranked
    if stale:
        console.print(
            f"[yellow]{len(stale)} submission(s) await re-scoring under metric version {METRIC_VERSION} "
            f"(pass --gt ROOT): {stale[:10]}"
        )
    if args.format == "terminal":
        out_console.print(to_rich(table))
        return ExitCode.OK
    text = {"md": to_markdown, "csv": to_csv, "json": to_json}.get(args.format, lambda t: to_html(t, METRIC_VERSION))(
        table
    )
    if args.out:
        write_text(args.out, text)
        out_console.print(f"wrote {args.out}")
    else:
        print(text)
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's sub-commands to the parser."""
    p = sub.add_parser(
        "submit", help="submit a folder or .zip: to a leaderboard server (--server), or score it locally (--gt)"
    )
    p.add_argument("path", type=Path, help="a submission folder or .zip (a run cell's folder with --model)")
    p.add_argument("--server", default=None, help="leaderboard server URL, e.g. https://mosxav.example.org")
    p.add_argument("--token", default=None, help="your team's API token (default: $MOSXAV_TOKEN)")
    p.add_argument("--phase", default="test", choices=("validation", "test"), help="the server's phase to enter")
    p.add_argument("--wait", action="store_true", help="wait for the score and print the row or the problems")
    p.add_argument(
        "--model",
        action="store_true",
        help="submit the model instead of its predictions: PATH is a run cell (submissions/<cell>/) whose "
        "model/ the server runs on the phase's frames",
    )
    p.add_argument(
        "--gt", type=Path, default=None, help="operators: MOSXAV root (or sequence folders) with the ground truth"
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="the split scored locally")
    p.add_argument(
        "--dataset", default=None, help="dataset name shown in the table (default: the ground-truth folder name)"
    )
    add_database_options(p, uploads=True)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("leaderboard", help="show or export the leaderboard table")
    p.add_argument(
        "--format", choices=("terminal", "md", "csv", "json", "html"), default="terminal", help="how to print the table"
    )
    p.add_argument("--by-structure", action="store_true", help="add Dice per structure")
    p.add_argument(
        "--labeled-fraction",
        "--label-fraction",
        dest="labeled_fraction",
        type=float,
        default=None,
        help="only entries with this labeled fraction",
    )
    p.add_argument(
        "--provenance",
        choices=PROVENANCES,
        default=None,
        help="only rows of this provenance: predictions (uploaded), model (predicted by a server), reference",
    )
    p.add_argument("--gt", type=Path, default=None, help="ground truth, to re-score entries after a metric change")
    add_database_options(p, uploads=True)
    p.add_argument("--out", type=Path, default=None, help="write to a file instead of stdout")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("publish", help="show (or --withdraw) one of your scored submissions on a server's table")
    p.add_argument("id", type=int, help="the submission's number (printed by submit, shown on your team page)")
    p.add_argument("--server", required=True, help="leaderboard server URL")
    p.add_argument("--token", default=None, help="your team's API token (default: $MOSXAV_TOKEN)")
    p.add_argument("--withdraw", action="store_true", help="take the row off the public table instead")
    p.set_defaults(func=cmd_publish)
