"""The ``mosxav-bench`` command line: one sub-command per job, errors as one readable line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mosxav.data.files import write_text
from mosxav.errors import DataError

console = Console(stderr=True)
out_console = Console()


def cmd_check(args: argparse.Namespace) -> int:
    from mosxav.data.check import check_dataset

    with console.status("checking") as status:
        problems = check_dataset(args.root, progress=lambda s: status.update(f"checking {s}"))
    errors = [p for p in problems if p.severity == "error"]
    if problems:
        table = Table(
            "severity", "file", "problem", title=f"{len(errors)} errors, {len(problems) - len(errors)} warnings"
        )
        for p in problems:
            table.add_row(p.severity, str(p.path), p.message)
        out_console.print(table)
    else:
        out_console.print(f"[green]{args.root}: no problems found")
    return 1 if errors else 0


def cmd_synth(args: argparse.Namespace) -> int:
    from mosxav.data.synth import SynthConfig, generate_dataset

    config = SynthConfig(
        sequences=args.sequences, frames=args.frames, size=args.size, seed=args.seed, test_sequences=args.test_sequences
    )
    out = generate_dataset(args.out, config, overwrite=args.overwrite)
    out_console.print(f"wrote {out} (contact sheet: {out / 'contact_sheet.png'})")
    if args.report is not None:
        from rich.progress import Progress

        from mosxav.data.synth.realism import comparison_markdown, realism_report

        with Progress(console=out_console, transient=True) as progress:
            rows = realism_report(args.report, out, out, progress=progress)
        out_console.print(comparison_markdown(rows, str(args.report), str(out)))
        out_console.print(f"wrote {out / 'realism.md'} and realism.png")
    return 0


def _sequence_list(args: argparse.Namespace) -> list[str] | None:
    from mosxav.data.layout import read_split_file

    return read_split_file(args.sequences) if args.sequences else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.task == "vos":
        from mosxav.evaluation.vos import evaluate_vos, write_results_csv

        result = evaluate_vos(
            args.gt,
            args.pred,
            first_mask=args.first_mask,
            split=args.split,
            sequences=_sequence_list(args),
            workers=args.workers,
        )
        write_results_csv(result, args.out)
        scores = result.global_scores()
        out_console.print(
            " ".join(f"{k} {v:.1f}" for k, v in scores.items()) + f"  ({len(result.objects)} objects) -> {args.out}"
        )
        return 0
    from mosxav.evaluation.folder import evaluate_semantic, write_semantic_report
    from mosxav.evaluation.metrics import SUMMARY_METRICS, summarize

    table = evaluate_semantic(
        args.gt,
        args.pred,
        split=args.split,
        tolerance=args.tolerance,
        sequences=_sequence_list(args),
        spacing=(args.spacing, args.spacing),
        workers=args.workers,
    )
    paths = write_semantic_report(table, args.out)
    summary = summarize(table)
    view = Table(
        "class", *(name.upper() if name != "dice" else "Dice" for name in SUMMARY_METRICS), "evaluated", "capped"
    )
    for _, row in summary.iterrows():
        view.add_row(
            str(row["class"]),
            *(f"{row[c]:.4f}" for c in SUMMARY_METRICS),
            str(row["n_evaluated"]),
            str(row["n_capped"]),
        )
    out_console.print(view)
    out_console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from mosxav.data.download import download

    root = download(args.root, args.source, offline=args.offline)
    out_console.print(f"MOSXAV ready at {root}")
    return 0


def cmd_export_hf(args: argparse.Namespace) -> int:
    from mosxav.data.hf import export_hf

    out = export_hf(args.root, args.out, task=args.task, licence=args.licence)
    out_console.print(f"wrote {out} (load with datasets.load_dataset({str(out)!r}))")
    return 0


#: The files of a run folder a person reads (the report, tables and plots), listed after a run.
_READABLE = (".md", ".csv", ".png", ".yaml")


def cmd_run(args: argparse.Namespace) -> int:
    from mosxav.harness.config import load_config
    from mosxav.harness.report import ARM_COLUMNS
    from mosxav.harness.run import Shard, run, run_cells
    from mosxav_leaderboard.reference_runs import record_reference_runs

    config = load_config(args.config, scale=args.scale)
    shard = Shard.parse(args.shard) if args.shard else None
    result = run(config, args.out, shard=shard, jobs=args.jobs)
    if result is None:  # a torchrun rank other than 0
        return 0
    summary, data = result
    if config.leaderboard and data.gt_root is not None:
        record_reference_runs(args.out, data, config, run_cells(config, shard))
    written = sorted(p.name for p in Path(args.out).iterdir() if p.is_file() and p.suffix in _READABLE)
    means = summary[summary["class"] == "mean"].groupby(ARM_COLUMNS)["dice"]
    means = means.agg(["mean", "std", "count"]).reset_index()
    order = {name: i for i, name in enumerate(config.methods)}
    means = means.sort_values("method", key=lambda s: s.map(order), kind="stable")
    view = Table("method", "labeled", "label noise", "seeds", "mean Dice (test)", title=f"run folder: {args.out}")
    for _, row in means.iterrows():
        dice = f"{row['mean']:.3f}" if row["count"] < 2 else f"{row['mean']:.3f} ± {row['std']:.3f}"
        view.add_row(row["method"], f"{row['labeled_fraction']:g}", f"{row['label_noise']:g}", str(row["count"]), dice)
    out_console.print(view)
    out_console.print(f"wrote {args.out}/" + ", ".join(written) + " (intervals over test sequences in results.md)")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from mosxav.harness.merge import merge_runs

    _, missing = merge_runs(args.shards, args.out)
    shards = len(args.shards)
    out_console.print(f"wrote {args.out}/results.md, summary.csv, per_frame.csv and plots from {shards} shard(s)")
    if missing:
        console.print(f"[yellow]{len(missing)} cell(s) no shard scored[/yellow] (listed in results.md)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mosxav.harness.compare import write_comparison

    path = write_comparison(args.run, args.reference, args.metric, args.structure, args.arm)
    out_console.print(path.read_text(encoding="utf-8"))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    if args.server is not None:
        return _submit_to_server(args)
    if args.gt is None:
        raise ValueError(
            "give --gt ROOT (score locally, as an operator) or --server URL --token T (submit to a server)"
        )
    from mosxav_leaderboard.board import default_db, submit
    from mosxav_leaderboard.store import DuplicateSubmission, Store
    from mosxav_leaderboard.submission import SubmissionInvalid

    store = Store(args.db or default_db())
    try:
        with console.status(f"validating and scoring {args.path}"):
            submission_id = submit(args.path, args.gt, store, split=args.split, dataset=args.dataset)
    except SubmissionInvalid as exc:
        _print_problems([(str(p.path), p.message) for p in exc.problems])
        return 1
    except DuplicateSubmission as exc:
        console.print(f"[yellow]not recorded:[/yellow] {exc}")
        return 3
    out_console.print(f"recorded submission #{submission_id} in {store.path}")
    return 0


def _print_problems(problems: list[tuple[str, str]]) -> None:
    table = Table("file", "problem", title=f"submission refused: {len(problems)} problem(s)")
    for path, message in problems:
        table.add_row(path, message)
    out_console.print(table)


def _token(args: argparse.Namespace) -> str:
    import os

    token = args.token or os.environ.get("MOSXAV_TOKEN")
    if not token:
        raise ValueError("--server needs --token T (or the MOSXAV_TOKEN environment variable)")
    return token


def _submit_to_server(args: argparse.Namespace) -> int:
    _need(("httpx",), CLIENT_EXTRA)
    from mosxav_leaderboard.service import client

    token = _token(args)
    try:
        submission_id = client.upload(args.server, token, args.path, args.phase, show_progress=True)
        out_console.print(f"submission #{submission_id} queued on {args.server}")
        if not args.wait:
            return 0
        with console.status(f"waiting for submission #{submission_id} to be scored"):
            answer = client.wait(args.server, token, submission_id)
    except client.ServerRefused as exc:
        console.print(f"[red]refused:[/red] {exc}")
        return 1
    if answer["status"] == "failed":
        _print_problems([(p["path"], p["message"]) for p in answer.get("problems", [])])
        return 1
    if answer["status"] != "scored":
        console.print(f"[yellow]still {answer['status']}[/yellow]: check later with the id #{submission_id}")
        return 4
    row = answer["row"]
    table = Table("metric", "value", title=f"submission #{submission_id} ({answer['phase']} phase)")
    for key in ("method", "labeled_fraction", "dice", "dice_lo", "dice_hi", "iou", "hd95", "assd"):
        table.add_row(key, str(row.get(key)))
    out_console.print(table)
    return 0


SERVE_EXTRA = (
    "the leaderboard service needs the [serve] extra: bash scripts/install.sh --serve "
    "(or pip install 'mosxav-bench[serve]')"
)
CLIENT_EXTRA = "submitting to a server needs httpx: pip install httpx (or the [serve] extra)"


def _need(modules: tuple[str, ...], message: str) -> None:
    """A missing optional dependency as one line saying which extra to install."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{message} (missing: {', '.join(missing)})")


class MissingExtra(RuntimeError):
    pass


def cmd_serve(args: argparse.Namespace) -> int:
    _need(("fastapi", "uvicorn", "python_multipart", "httpx"), SERVE_EXTRA)
    from mosxav_leaderboard.board import default_db
    from mosxav_leaderboard.service.server import serve
    from mosxav_leaderboard.service.settings import (
        DEFAULT_MAX_UPLOAD_BYTES,
        DEFAULT_PHASES,
        Settings,
        default_scoring_workers,
        read_phases,
    )

    db = args.db or default_db()
    settings = Settings(
        gt=args.gt,
        db=db,
        data=args.data or db.parent / "service",
        host=args.host,
        port=args.port,
        workers=default_scoring_workers() if args.workers is None else args.workers,
        lease_seconds=args.lease_seconds,
        max_upload_bytes=args.max_upload_mb * 1024**2 if args.max_upload_mb else DEFAULT_MAX_UPLOAD_BYTES,
        public_url=args.public_url,
        trusted_proxies=args.trusted_proxies,
        team_rows=args.team_rows,
        phases=read_phases(args.phases) if args.phases else DEFAULT_PHASES,
    )
    serve(settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """A scoring worker of its own beside a running server: it joins through the database and the
    data folder, outlives server restarts and stops on Ctrl-C or when the ground truth changes."""
    _need(("fastapi", "uvicorn", "python_multipart", "httpx"), SERVE_EXTRA)
    from mosxav_leaderboard.board import default_db
    from mosxav_leaderboard.service.settings import Settings
    from mosxav_leaderboard.service.worker import run_worker

    db = args.db or default_db()
    settings = Settings(
        gt=args.gt,
        db=db,
        data=args.data or db.parent / "service",
        workers=0,
        lease_seconds=args.lease_seconds,
    )
    stopped = run_worker(settings, once=args.once)
    console.print(f"worker stopped: {stopped}")
    return 0 if stopped in ("stopped", "idle") else 1


def cmd_admin(args: argparse.Namespace) -> int:
    from mosxav_leaderboard.board import default_db
    from mosxav_leaderboard.service.database import Database

    database = Database(args.db or default_db())
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
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    _need(("httpx",), CLIENT_EXTRA)
    from mosxav_leaderboard.service import client

    token = _token(args)
    try:
        client.publish(args.server, token, args.id, not args.withdraw)
    except client.ServerRefused as exc:
        console.print(f"[red]refused:[/red] {exc}")
        return 1
    out_console.print(f"submission #{args.id} {'withdrawn from' if args.withdraw else 'published on'} {args.server}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mosxav.evaluation.metrics import METRIC_VERSION
    from mosxav_leaderboard.board import build_table, default_db, rescore_stale
    from mosxav_leaderboard.render import to_csv, to_html, to_json, to_markdown, to_rich
    from mosxav_leaderboard.store import Store

    store = Store(args.db or default_db())
    if args.gt is not None:
        rescored = rescore_stale(store, args.gt)
        if rescored:
            console.print(f"re-scored {len(rescored)} submission(s) under metric version {METRIC_VERSION}")
    table, stale = build_table(
        store, label_fraction=args.label_fraction, by_structure=args.by_structure or args.format == "html"
    )
    if stale:
        console.print(
            f"[yellow]{len(stale)} submission(s) await re-scoring under metric version {METRIC_VERSION} "
            f"(pass --gt ROOT): {stale[:10]}"
        )
    if args.format == "terminal":
        out_console.print(to_rich(table))
        return 0
    text = {"md": to_markdown, "csv": to_csv, "json": to_json}.get(args.format, lambda t: to_html(t, METRIC_VERSION))(
        table
    )
    if args.out:
        write_text(args.out, text)
        out_console.print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mosxav-bench", description="MOSXAV-Bench: data, metrics, training and the leaderboard."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train and score methods x labeled fractions x seeds (default: quick synthetic run)")
    p.add_argument("--config", type=Path, default=None, help="YAML overriding the quick default config")
    p.add_argument("--out", type=Path, default=Path("runs/default"))
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        help="multiply resolution and iterations (e.g. 0.25 to run configs/paper.yaml on a CPU)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only cells I, I+N, I+2N, ... of the matrix (an array job; join the shards with merge)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="cells trained at once in worker processes, the cores shared out (default: one per core on a CPU, "
        "1 on a GPU); a cell's numbers do not depend on it",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("merge", help="join the run folders of a sharded run (run --shard I/N) into one")
    p.add_argument("out", type=Path)
    p.add_argument("shards", type=Path, nargs="+", help="the shards' run folders, all of one config")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("compare", help="every method of a run against one, paired over test units")
    p.add_argument("run", type=Path, help="a run folder (its per_frame.csv)")
    p.add_argument("--reference", required=True, help="the method the others are compared with")
    p.add_argument("--structure", default=None, help="one structure (e.g. vessel) instead of the macro mean")
    p.add_argument("--metric", default="dice", choices=("dice", "iou", "nsd"))
    p.add_argument(
        "--arm",
        action="append",
        metavar="NAME=RUN[:METHOD]",
        help="also compare METHOD (default: the reference) of another run folder, as NAME (repeatable)",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "submit", help="submit a folder or .zip: to a leaderboard server (--server), or score it locally (--gt)"
    )
    p.add_argument("path", type=Path)
    p.add_argument("--server", default=None, help="leaderboard server URL, e.g. https://mosxav.example.org")
    p.add_argument("--token", default=None, help="your team's API token (default: $MOSXAV_TOKEN)")
    p.add_argument("--phase", default="test", choices=("validation", "test"))
    p.add_argument("--wait", action="store_true", help="wait for the score and print the row or the problems")
    p.add_argument(
        "--gt", type=Path, default=None, help="operators: MOSXAV root (or sequence folders) with the ground truth"
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--dataset", default=None, help="dataset name shown in the table (default: the ground-truth folder name)"
    )
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="leaderboard database (default: $MOSXAV_HOME/leaderboard/leaderboard.sqlite)",
    )
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("leaderboard", help="show or export the leaderboard table")
    p.add_argument("--format", choices=("terminal", "md", "csv", "json", "html"), default="terminal")
    p.add_argument("--by-structure", action="store_true", help="add Dice per structure")
    p.add_argument("--label-fraction", type=float, default=None, help="only entries with this labeled fraction")
    p.add_argument("--gt", type=Path, default=None, help="ground truth, to re-score entries after a metric change")
    p.add_argument("--db", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="write to a file instead of stdout")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("serve", help="run the leaderboard service (HTTP API, pages, scoring workers)")
    p.add_argument("--gt", type=Path, required=True, help="MOSXAV root with the val and (hidden) test ground truth")
    p.add_argument("--db", type=Path, default=None, help="database (default: $MOSXAV_HOME/leaderboard/...)")
    p.add_argument("--data", type=Path, default=None, help="uploads and scratch (default: beside the database)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
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
        "--team-rows",
        choices=("best", "latest"),
        default="best",
        help="which published row of a team the public table shows per phase and fraction",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="a scoring worker of its own beside a running server (same machine)")
    p.add_argument("--gt", type=Path, required=True, help="the ground truth the server was started with")
    p.add_argument("--db", type=Path, default=None, help="the server's database (default: as serve's)")
    p.add_argument("--data", type=Path, default=None, help="the server's data folder, where uploads arrive")
    p.add_argument("--lease-seconds", type=float, default=120.0, help="as the server's: a dead worker's job is retaken")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("publish", help="show (or --withdraw) one of your scored submissions on a server's table")
    p.add_argument("id", type=int, help="the submission's number (printed by submit, shown on your team page)")
    p.add_argument("--server", required=True, help="leaderboard server URL")
    p.add_argument("--token", default=None, help="your team's API token (default: $MOSXAV_TOKEN)")
    p.add_argument("--withdraw", action="store_true", help="take the row off the public table instead")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("admin", help="leaderboard service administration: teams, tokens, limits, hidden rows")
    p.add_argument("--db", type=Path, default=None)
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add-team", help="add a team and print its API token (once)")
    a.add_argument("name")
    actions.add_parser("list-teams", help="list teams")
    a = actions.add_parser("revoke", help="revoke a team's token")
    a.add_argument("name")
    a = actions.add_parser("new-token", help="revoke a team's token and print a new one")
    a.add_argument("name")
    a = actions.add_parser("set-limit", help="submissions per UTC day for a team and phase")
    a.add_argument("name")
    a.add_argument("--phase", choices=("validation", "test"), default="test")
    a.add_argument("--per-day", type=int, required=True)
    for action in ("hide", "unhide"):
        a = actions.add_parser(action, help=f"{action} a table row (the reason is kept)")
        a.add_argument("id", help="the row's id as the table shows it (a submission number, or ref-N)")
        a.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_admin)

    p = sub.add_parser("check", help="validate a MOSXAV folder and list every problem")
    p.add_argument("root", type=Path)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("synth", help="generate a synthetic dataset in the MOSXAV layout")
    p.add_argument("out", type=Path)
    p.add_argument("--sequences", type=int, default=30, help="trainval sequences (60%% train, 40%% val)")
    p.add_argument("--test-sequences", type=int, default=None, help="test sequences (default 40%% of --sequences)")
    p.add_argument("--frames", type=int, default=45)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="REAL_DIR",
        help="compare the new set's masks with real instance masks (needs scikit-image: the [bench] extra)",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("evaluate", help="score predictions (semantic metrics or video J&F)")
    p.add_argument("--task", choices=("semantic", "vos"), default="semantic")
    p.add_argument("--gt", type=Path, required=True, help="a MOSXAV root or a folder of sequence folders")
    p.add_argument("--pred", type=Path, required=True)
    p.add_argument(
        "--split", choices=("train", "val", "test"), default=None, help="which split when --gt is a MOSXAV root"
    )
    p.add_argument(
        "--sequences", type=Path, default=None, help="a split file (one sequence per line) to restrict scoring to"
    )
    p.add_argument("--first-mask", type=Path, default=None, help="*_first_mask.json (first appearance, seen/unseen)")
    p.add_argument("--tolerance", type=float, default=2.0, help="NSD tolerance in pixels (times --spacing)")
    p.add_argument("--spacing", type=float, default=1.0, help="pixel spacing (e.g. mm per pixel)")
    p.add_argument("--out", type=Path, default=Path("results.csv"))
    p.add_argument(
        "--workers", type=int, default=None, help="processes scoring sequences in parallel (default: the cores)"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("download", help="fetch MOSXAV (Hugging Face Hub or a SHA-256 manifest)")
    p.add_argument("root", type=Path)
    p.add_argument("--source", default="hf", help="'hf' or the path of a manifest (YAML/JSON)")
    p.add_argument("--offline", action="store_true", help="use only what is already cached")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("export-hf", help="write parquet shards + dataset card for the Hugging Face Hub")
    p.add_argument("root", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--task", choices=("semantic", "vos"), default="semantic")
    p.add_argument("--licence", default="cc-by-nc-sa-4.0")
    p.set_defaults(func=cmd_export_hf)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except (DataError, FileExistsError, ValueError, MissingExtra) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")  # a message's own [brackets] are text
        return 2


if __name__ == "__main__":
    sys.exit(main())
