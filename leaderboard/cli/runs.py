"""``run``, ``merge``, ``compare``, ``array-run`` and ``width-recall``: the experiment harness."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.table import Table

from mosxav_leaderboard.cli.common import (
    ExitCode,
    console,
    out_console,
    positive_int,
)

#: The files of a run folder a person reads (the report, tables and plots), listed after a run.
_READABLE = (".md", ".csv", ".png", ".pdf", ".yaml")


def cmd_run(args: argparse.Namespace) -> int:
    from mosxav.harness.config import load_config
    from mosxav.harness.report import ARM_COLUMNS
    from mosxav.harness.run import Shard, run, run_cells
    from mosxav_leaderboard.reference_runs import record_reference_runs

    config = load_config(args.config, scale=args.scale)
    if args.count_cells:  # what an array job needs: --array=0-(this - 1)
        out_console.print(len(run_cells(config)))
        return ExitCode.OK
    shard = Shard.parse(args.shard) if args.shard else None
    try:
        result = run(config, args.out, shard=shard, jobs=args.jobs, restart=args.restart)
    except KeyboardInterrupt:
        kept = sorted({p.parent for p in Path(args.out).glob("work/**/last.pt")})
        console.print(
            f"interrupted: {len(kept)} cell(s) keep their last checkpoint in {args.out}/work (saved every "
            f"{config.effective_train.checkpoint_every} steps); run the same command again to resume them",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return ExitCode.INTERRUPTED
    if result is None:  # a torchrun rank other than 0
        return ExitCode.OK
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
    return ExitCode.OK


def cmd_methods(args: argparse.Namespace) -> int:
    import json

    from mosxav.training.protocol import available_methods, method_info

    names = sorted(available_methods()) if not args.names else args.names
    infos = [method_info(name) for name in names]
    if args.format == "json":
        out_console.print_json(json.dumps([vars(i) | {"built_in": i.built_in} for i in infos], default=str))
        return ExitCode.OK
    view = Table("method", "from", "unlabeled frames", "its options (default)", title="registered methods")
    for info in infos:
        source = "built in" if info.built_in else f"plugin: {info.distribution}"
        own = ", ".join(f"{key}={info.options[key]!r}" for key in info.own_options) or "–"
        zero = f" (zero weight: {', '.join(f'{k}={v!r}' for k, v in info.zero_unlabeled.items())})"
        view.add_row(info.name, f"{source}\n{info.target}", "yes" + zero if info.uses_unlabeled else "no", own)
    out_console.print(view)
    shared = ", ".join(k for k in infos[0].options if k not in infos[0].own_options) if infos else ""
    out_console.print(f"every method also takes: {shared} (method_options.<method> in a run config)")
    return ExitCode.OK


def cmd_merge(args: argparse.Namespace) -> int:
    from mosxav.harness.merge import merge_runs

    _, missing = merge_runs(args.shards, args.out)
    shards = len(args.shards)
    out_console.print(f"wrote {args.out}/results.md, summary.csv, per_frame.csv and plots from {shards} shard(s)")
    if missing:
        console.print(f"[yellow]{len(missing)} cell(s) no shard scored[/yellow] (listed in results.md)")
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    from mosxav.harness.compare import write_comparison

    path = write_comparison(args.run, args.reference, args.metric, args.structure, args.arm)
    out_console.print(path.read_text(encoding="utf-8"))
    return ExitCode.OK


def cmd_width_recall(args: argparse.Namespace) -> int:
    from mosxav.data.files import write_text
    from mosxav.harness.width_report import width_report

    text = width_report(args.runs, args.gt, args.radius, args.reference)
    print(text)
    if args.out:
        write_text(args.out, text)
    return ExitCode.OK


def cmd_array_run(args: argparse.Namespace) -> int:
    from mosxav_leaderboard.array_run import run_array

    done, failed, never = run_array(
        args.configs,
        args.out,
        then=args.then,
        parallel=args.jobs,
        deadline=args.deadline,
        grace=args.grace,
        scale=args.scale,
    )
    out_console.print(
        f"{done} shards ok, {failed} failed or stopped, {never} never started (log: {args.out}/shards.log)"
    )
    return ExitCode.OK if failed == 0 and never == 0 else ExitCode.PROBLEMS


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's sub-commands to the parser."""
    p = sub.add_parser("run", help="train and score methods x labeled fractions x seeds (default: quick synthetic run)")
    p.add_argument("--config", type=Path, default=None, help="YAML overriding the quick default config")
    p.add_argument("--out", type=Path, default=Path("runs/default"), help="the run folder (resumed if it exists)")
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        help="multiply resolution and iterations (e.g. 0.25 to run configs/paper.yaml on a CPU)",
    )
    p.add_argument(
        "--count-cells",
        action="store_true",
        help="print the number of cells of the config's matrix and exit (the size of an array job)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only cells I, I+N, I+2N, ... of the matrix (an array job; join the shards with merge); "
        "'slurm': this task of an sbatch --array job (docs/cluster.md)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="cells trained at once in worker processes, the cores shared out (default: one per core on a CPU, "
        "1 on a GPU); a cell's numbers do not depend on it",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="train the cells anew, removing their checkpoints and predictions in --out (a run otherwise resumes "
        "them, and refuses checkpoints trained with other settings)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("methods", help="the registered methods: built in or a plugin, their options and defaults")
    p.add_argument("names", nargs="*", help="only these methods (default: every registered one)")
    p.add_argument("--format", choices=("terminal", "json"), default="terminal", help="a table, or JSON")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("merge", help="join the run folders of a sharded run (run --shard I/N) into one")
    p.add_argument("shards", type=Path, nargs="+", help="the shards' run folders, all of one config")
    p.add_argument("--out", type=Path, required=True, help="the merged run folder")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("compare", help="every method of a run against one, paired over test units")
    p.add_argument("run", type=Path, help="a run folder (its per_frame.csv)")
    p.add_argument("--reference", required=True, help="the method the others are compared with")
    p.add_argument("--structure", default=None, help="one structure (e.g. vessel) instead of the macro mean")
    p.add_argument("--metric", default="dice", choices=("dice", "iou", "nsd"), help="the per-unit score compared")
    p.add_argument(
        "--arm",
        action="append",
        metavar="NAME=RUN[:METHOD]",
        help="also compare METHOD (default: the reference) of another run folder, as NAME (repeatable)",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("width-recall", help="vessel recall split into trunk and thin branches, per method of runs")
    p.add_argument("runs", nargs="+", type=Path, help="run folders of a pairs dataset")
    p.add_argument("--gt", required=True, type=Path, help="the folder of N_gt.png masks")
    p.add_argument("--radius", type=int, default=2, help="trunk = survives an opening by this disk")
    p.add_argument("--reference", default=None, help="pair every other method with this one, image by image")
    p.add_argument("--out", type=Path, default=None, help="also write the table(s) here")
    p.set_defaults(func=cmd_width_recall)

    p = sub.add_parser("array-run", help="every cell of run configs as its own shard, many at a time, then merged")
    p.add_argument("configs", type=Path, nargs="+", help="run configs (YAML), every cell of each its own process")
    p.add_argument("--then", type=Path, nargs="*", default=[], help="configs to start after all the others")
    p.add_argument("--out", type=Path, required=True, help="OUT/<config stem>/shards/ and the merged run folders")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N", help="shards running at once")
    p.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no shard starts")
    p.add_argument("--grace", type=float, default=60.0, help="seconds after the deadline before shards stop")
    p.add_argument("--scale", type=float, default=None, help="passed to every run (a smoke test: 0.05)")
    p.set_defaults(func=cmd_array_run)
