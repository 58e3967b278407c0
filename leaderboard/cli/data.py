"""``check``, ``synth``, ``evaluate``, ``download`` and ``export-hf``: datasets and their scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from mosxav_leaderboard.cli.common import (
    ExitCode,
    console,
    out_console,
    positive_int,
    print_problems,
    uncut_table,
)


def cmd_check(args: argparse.Namespace) -> int:
    from mosxav.data.check import check_dataset
    from mosxav.errors import DataError

    if not args.root.is_dir():  # nothing to check: the command could not run (exit 2), not "problems found"
        raise DataError(args.root, "not a folder: give the root of a MOSXAV dataset (trainval/ and test/)")
    with console.status("checking") as status:
        problems = check_dataset(args.root, progress=lambda s: status.update(f"checking {s}"))
    errors = [p for p in problems if p.severity == "error"]
    if problems:
        rows = [[p.severity, str(p.path), p.message] for p in problems]
        title = f"{len(errors)} errors, {len(problems) - len(errors)} warnings"
        out_console.print(uncut_table("severity", "file", "problem", title=title, rows=rows))
    else:
        out_console.print(f"[green]{args.root}: no problems found")
    return ExitCode.PROBLEMS if errors else ExitCode.OK


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
    return ExitCode.OK


def _sequence_list(args: argparse.Namespace) -> list[str] | None:
    from mosxav.data.layout import read_split_file

    return read_split_file(args.sequences) if args.sequences else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    args.gt = args.gt or args.gt_option
    args.pred = args.pred or args.pred_option
    if args.gt is None or args.pred is None:
        raise ValueError("evaluate needs the ground truth and the predictions: mosxav-bench evaluate GT PRED")
    if args.task == "vos":
        from mosxav.evaluation.vos import evaluate_vos, write_results_csv

        result = evaluate_vos(
            args.gt,
            args.pred,
            first_mask=args.first_mask,
            split=args.split,
            sequences=_sequence_list(args),
            workers=args.jobs,
        )
        write_results_csv(result, args.out)
        scores = result.global_scores()
        out_console.print(
            " ".join(f"{k} {v:.1f}" for k, v in scores.items()) + f"  ({len(result.objects)} objects) -> {args.out}"
        )
        return ExitCode.OK
    from mosxav.evaluation.folder import PredictionProblems, evaluate_semantic, write_semantic_report
    from mosxav.evaluation.metrics import SUMMARY_METRICS, summarize
    from mosxav.evaluation.uncertainty import SequenceSums, headline_interval

    try:
        table = evaluate_semantic(
            args.gt,
            args.pred,
            split=args.split,
            tolerance=args.tolerance,
            sequences=_sequence_list(args),
            spacing=(args.spacing, args.spacing),
            workers=args.jobs,
        )
    except PredictionProblems as exc:
        print_problems([(str(p.path), p.message) for p in exc.problems], title="predictions not scored")
        return ExitCode.PROBLEMS
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
    sums = SequenceSums.from_frames(table)
    interval = headline_interval([sums], "dice")
    out_console.print(
        f"mean Dice {interval.text()} (95 % interval over {len(sums.sequences)} test sequences: one set of "
        "predictions, so it covers test-sequence variation only; docs/statistics.md)"
    )
    out_console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return ExitCode.OK


def cmd_download(args: argparse.Namespace) -> int:
    from mosxav.data.download import download

    root = download(args.root, args.source, offline=args.offline)
    out_console.print(f"MOSXAV ready at {root}")
    return ExitCode.OK


def cmd_export_hf(args: argparse.Namespace) -> int:
    from mosxav.data.hf import export_hf

    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"{args.out}: folder exists and is not empty (pass --overwrite)")
    out = export_hf(args.root, args.out, task=args.task, licence=args.licence)
    out_console.print(f"wrote {out} (load with datasets.load_dataset({str(out)!r}))")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's sub-commands to the parser."""
    p = sub.add_parser("check", help="validate a MOSXAV folder and list every problem")
    p.add_argument("root", type=Path, help="the dataset's root (trainval/ and test/)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("synth", help="generate a synthetic dataset in the MOSXAV layout")
    p.add_argument("--out", type=Path, required=True, help="the new dataset's root")
    p.add_argument("--sequences", type=int, default=30, help="trainval sequences (60%% train, 40%% val)")
    p.add_argument("--test-sequences", type=int, default=None, help="test sequences (default 40%% of --sequences)")
    p.add_argument("--frames", type=int, default=45, help="frames per sequence")
    p.add_argument("--size", type=int, default=512, help="frame side in pixels")
    p.add_argument("--seed", type=int, default=0, help="the generator's seed (the same seed, the same set)")
    p.add_argument("--overwrite", action="store_true", help="replace a folder that is not empty")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="REAL_DIR",
        help="compare the new set's masks with real instance masks (needs scikit-image: the [bench] extra)",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "evaluate",
        help="score predictions (semantic metrics or video J&F)",
        usage="mosxav-bench evaluate GT PRED [--task semantic|vos] [--split S] [--out FILE] [options]",
    )
    p.add_argument("gt", type=Path, nargs="?", metavar="GT", help="a MOSXAV root or a folder of sequence folders")
    p.add_argument("pred", type=Path, nargs="?", metavar="PRED", help="the predictions: <sequence>/<frame>.png")
    p.add_argument("--gt", dest="gt_option", type=Path, default=None, help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--pred", dest="pred_option", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--task", choices=("semantic", "vos"), default="semantic", help="per-class metrics or video J&F")
    p.add_argument(
        "--split", choices=("train", "val", "test"), default=None, help="which split when GT is a MOSXAV root"
    )
    p.add_argument(
        "--sequences", type=Path, default=None, help="a split file (one sequence per line) to restrict scoring to"
    )
    p.add_argument("--first-mask", type=Path, default=None, help="*_first_mask.json (first appearance, seen/unseen)")
    p.add_argument("--tolerance", type=float, default=2.0, help="NSD tolerance in pixels (times --spacing)")
    p.add_argument("--spacing", type=float, default=1.0, help="pixel spacing (e.g. mm per pixel)")
    p.add_argument("--out", type=Path, default=Path("results.csv"), help="the per-frame (or per-object) CSV")
    p.add_argument(
        "--jobs",
        "--workers",
        dest="jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="processes scoring sequences in parallel (default: the cores)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("download", help="fetch MOSXAV (Hugging Face Hub or a SHA-256 manifest)")
    p.add_argument("root", type=Path, help="the folder MOSXAV goes into")
    p.add_argument("--source", default="hf", help="'hf' or the path of a manifest (YAML/JSON)")
    p.add_argument("--offline", action="store_true", help="use only what is already cached")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("export-hf", help="write parquet shards + dataset card for the Hugging Face Hub")
    p.add_argument("root", type=Path, help="a MOSXAV root")
    p.add_argument("--out", type=Path, required=True, help="the folder of parquet shards and the card")
    p.add_argument("--task", choices=("semantic", "vos"), default="semantic", help="frames with masks, or videos")
    p.add_argument(
        "--licence",
        default=None,
        help="the card's licence (default: MOSXAV's; the toolkit's, MIT, for a set it generated)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a folder that is not empty")
    p.set_defaults(func=cmd_export_hf)
