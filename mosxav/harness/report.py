"""The run report: ``summary.csv``, ``results.md``, the Dice plots and the overlay sheet.

Uncertainty is shown the way it was measured (``mosxav.evaluation.uncertainty``): each cell is the
frame-weighted headline and its 95 % interval, over test sequences and, with several seeds, over seeds
too; in a cross-validated run over folds (each fold is one training) and seeds. With one training per
method the report says that its intervals cover test-unit variation only, and ranks nothing: two
trainings of one method differ by as much as methods do. Otherwise a method's rank is 1 + the number of
methods of its group that are significantly better than it, paired by seed and unit
(``mosxav.harness.arms.paired_arms``) and Holm-adjusted over the group's pairs, so methods the test
cannot separate share a rank. Untrained
references (thresholding) are the floor, outside the ranking.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mosxav.data.files import read_index_mask, write_text
from mosxav.data.visualize import contact_sheet
from mosxav.evaluation.metrics import RANKED_METRICS, summarize
from mosxav.evaluation.uncertainty import ALPHA, MIN_UNITS, Interval, holm
from mosxav.harness import figures
from mosxav.harness.arms import arm_interval, paired_arms, units_of
from mosxav.harness.control import controls

#: The columns of ``per_frame.csv`` that name an arm: one method at one labeled fraction and noise rate.
ARM_COLUMNS = ["method", "labeled_fraction", "label_noise"]
#: ... and those that name a cell: an arm's seed and, in a cross-validated run, its fold.
CELL_COLUMNS = [*ARM_COLUMNS, "seed", "fold"]
HEADERS = {"dice": "Dice", "iou": "IoU", "hd95": "HD95 (px)", "assd": "ASSD (px)"}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table (the one writer for every table the toolkit prints as Markdown)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def with_noise_free_arms(frames: pd.DataFrame) -> pd.DataFrame:
    """Rows of a method trained at label noise 0 only, in a run with other noise rates at its labeled
    fraction, repeated at each of those rates: a method the noise does not reach (pseudo-label noise and
    a method without pseudo-labels) is trained once and stands beside every rate's methods."""
    rates = sorted(frames["label_noise"].unique())
    if len(rates) < 2:
        return frames
    extra = []
    for (_, fraction), rows in frames.groupby(["method", "labeled_fraction"], sort=False):
        if set(rows["label_noise"]) != {0.0}:
            continue
        others = frames[(frames["labeled_fraction"] == fraction) & (frames["label_noise"] > 0)]["label_noise"].unique()
        extra += [rows.assign(label_noise=rate) for rate in sorted(others)]
    return pd.concat([frames, *extra], ignore_index=True) if extra else frames


def noise_free_methods(frames: pd.DataFrame) -> set[str]:
    """Methods ``with_noise_free_arms`` repeats: trained at noise 0 only in a run with other rates."""
    if frames["label_noise"].nunique() < 2:
        return set()
    trained = frames[frames["labeled_fraction"] > 0]
    return {m for m, rows in trained.groupby("method") if set(rows["label_noise"]) == {0.0}}


def _cell_text(interval: Interval, metric: str) -> str:
    """The estimate and its interval (or why there is none)."""
    return interval.text(2 if metric in ("hd95", "assd") else 3)


def _arm_rows(frames: pd.DataFrame, class_id: int | None) -> list[dict[str, Any]]:
    """One row per arm for one class (``class_id``) or the macro mean over classes (None)."""
    rows = []
    for key, group in frames.groupby(ARM_COLUMNS, sort=False):
        classes = None if class_id is None else [class_id]
        if class_id is not None and not group.loc[group["class_id"] == class_id, "evaluated"].astype(bool).any():
            continue
        row: dict[str, Any] = dict(zip(ARM_COLUMNS, key, strict=True))
        row["seeds"] = group["seed"].nunique()
        row["units"] = units_of(group)["sequence"].nunique()
        intervals = {m: arm_interval(group, m, classes) for m in RANKED_METRICS}
        row["dice_estimate"] = intervals["dice"].estimate
        for metric in RANKED_METRICS:
            row[metric] = _cell_text(intervals[metric], metric)
        rows.append(row)
    return rows


def significance_ranks(
    frames: pd.DataFrame, methods: Sequence[str], metric: str = "dice", classes: Sequence[int] | None = None
) -> dict[str, int]:
    """Rank = 1 + the number of ``methods`` significantly better, paired by seed and unit; every pair is
    tested once and the pairs are one family (Holm), so methods that do not differ share a rank in about
    95 % of studies however many are ranked (docs/statistics.md, the fourth coverage table)."""
    arms = {m: frames[frames["method"] == m] for m in methods}
    pairs = list(itertools.combinations(methods, 2))
    results = [paired_arms(arms[a], arms[b], metric, classes) for a, b in pairs]
    beaten_by = dict.fromkeys(methods, 0)
    for (a, b), result, p in zip(pairs, results, holm([r.p for r in results]), strict=True):
        if result.significant and p < ALPHA:
            beaten_by[b if result.interval.estimate > 0 else a] += 1
    return {m: 1 + beaten_by[m] for m in methods}


def _control_section(frames: pd.DataFrame) -> tuple[list[str], set[float]]:
    """The positive control's lines, and the labeled fractions where it was not detected."""
    found = controls(frames)
    if not found:
        return [
            "## Positive control",
            "",
            "None in this run: list `fully_supervised` beside `supervised` to learn whether the design can see "
            "a difference known to exist (without it, a difference not found between methods is no finding).",
            "",
        ], set()
    lines = ["## Positive control", ""] + [c.sentence() for c in found] + [""]
    return lines, {c.labeled_fraction for c in found if not c.detected}


def _headline_section(frames: pd.DataFrame, untrained: Sequence[str], blind: set[float] = frozenset()) -> list[str]:
    """Per (fraction, noise) group: the trained methods (ranked when seeds allow and the positive control
    at that fraction, if it ran, was detected), then the floor."""
    out = []
    rows = _arm_rows(frames, None)
    trained = [r for r in rows if r["method"] not in untrained]
    floor = [r for r in rows if r["method"] in untrained]
    noise_free = noise_free_methods(frames)
    headers = ["rank", "method", "seeds", "units"] + [HEADERS[m] for m in RANKED_METRICS]
    for fraction, noise in sorted({(r["labeled_fraction"], r["label_noise"]) for r in trained}):
        members = [r for r in trained if (r["labeled_fraction"], r["label_noise"]) == (fraction, noise)]
        members.sort(key=lambda r: -r["dice_estimate"])
        group = frames[(frames["labeled_fraction"] == fraction) & (frames["label_noise"] == noise)]
        folds = cross_validated(group)
        one_seed = min(r["seeds"] for r in members) < 2 and not folds
        few_units = min(r["units"] for r in members) < MIN_UNITS
        control_missed = fraction in blind
        if one_seed or few_units or control_missed:
            ranks = {r["method"]: "–" for r in members}
        else:
            ranks = significance_ranks(group, [r["method"] for r in members])

        def name(r: dict[str, Any]) -> str:
            return r["method"] + (" (trained once: the noise does not reach it)" if r["method"] in noise_free else "")

        def cells(r: dict[str, Any]) -> list[Any]:
            return [r["seeds"], r["units"], *(r[m] for m in RANKED_METRICS)]

        table = [[ranks[r["method"]], name(r), *cells(r)] for r in members]
        table += [["–", f"{r['method']} (untrained floor)", *cells(r)] for r in floor]
        out += [f"### labeled fraction {fraction:g}, label noise {noise:g}", "", markdown_table(headers, table)]
        if few_units:
            out += [
                f"Fewer than {MIN_UNITS} test units: no interval and no rank (the exact sign-flip test "
                "cannot reach p < 0.05).",
                "",
            ]
        elif control_missed:
            out += [
                "No rank: the positive control at this labeled fraction was not detected (above), so the "
                "design cannot separate methods it was built to separate.",
                "",
            ]
        elif one_seed:
            out += [
                "One training per method: each interval covers test-unit variation only, and says nothing "
                "of another training of the same method, whose spread is as large as most differences "
                "between methods. No rank from one seed: run several seeds to rank.",
                "",
            ]
        else:
            level = "seed and fold (each fold of a seed is one training; the folds are resampled, not the images)"
            out += [
                f"Rank: 1 + the methods significantly better (paired by {level if folds else 'seed and unit'}, "
                "Holm-adjusted p < 0.05 over the group's pairs); methods the test cannot separate share a rank.",
                "",
            ]
    return out


def cross_validated(frames: pd.DataFrame) -> bool:
    """Whether the rows come from a cross-validated run (a ``fold`` per unit)."""
    return "fold" in frames.columns and not frames["fold"].isna().all()


def _training_section(training: pd.DataFrame | None) -> list[str]:
    """How much the unlabeled frames act: each arm's unlabeled share of the loss, over the run and at its
    end (means over its seeds), and the step its scored weights come from."""
    if training is None or training.empty or "unlabeled_share_run" not in training.columns:
        return []
    rows = []
    for key, group in training.groupby(ARM_COLUMNS, sort=False):
        run, end = group["unlabeled_share_run"].astype(float), group["unlabeled_share_end"].astype(float)
        if run.isna().all():
            continue
        best = group["best_step"].astype(float)
        rows.append(
            [
                key[0],
                f"{key[1]:g}",
                f"{key[2]:g}",
                len(group),
                f"{run.mean():.3f}",
                f"{end.mean():.3f}",
                f"{best.median():.0f}",
            ]
        )
    if not rows:
        return []
    headers = ["method", "labeled", "label noise", "seeds", "unlabeled share, run", "at its end", "median best step"]
    return [
        "## How much the unlabeled frames act",
        "",
        "The weighted unlabeled terms' share of the loss on the predicting network (sampled every "
        "`train.log_every` steps; `training.csv`): near 0, a semi-supervised method is its supervised "
        "bound with a trace of its own loss. Best step: where the scored weights come from (validation).",
        "",
        markdown_table(headers, rows),
    ]


def with_intervals(summary: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``dice_low``/``dice_high``: each row's 95 % interval over its test units (one
    training per row, or one fold of one: it covers test-unit variation only; NaN under 6 units)."""
    keys = [c for c in (*ARM_COLUMNS, "seed", "fold") if c in summary.columns]
    class_ids = frames.drop_duplicates("class").set_index("class")["class_id"].to_dict()
    groups = {key if isinstance(key, tuple) else (key,): rows for key, rows in frames.groupby(keys, dropna=False)}
    lows, highs = [], []
    for row in summary.to_dict("records"):
        rows = groups.get(tuple(row[k] for k in keys))
        classes = None if row["class"] == "mean" else [class_ids.get(row["class"])]
        interval = None
        if rows is not None and (classes is None or classes[0] is not None):
            rows = rows.drop(columns=["fold"], errors="ignore")  # one fold's images: the units of one training
            interval = arm_interval(rows, "dice", classes)
        lows.append(np.nan if interval is None else interval.low)
        highs.append(np.nan if interval is None else interval.high)
    out = summary.copy()
    position = out.columns.get_loc("dice") + 1
    out.insert(position, "dice_low", lows)
    out.insert(position + 1, "dice_high", highs)
    return out


def write_report(
    frames: pd.DataFrame, run_dir: Path, untrained: Sequence[str] = (), training: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Summary CSV, Markdown report and plots from the per-frame table (and each cell's training
    summary, ``training``); returns the per-seed summary."""
    units = ["seed"] + (["fold"] if "fold" in frames.columns else [])
    per_seed = with_intervals(summarize(frames, by=ARM_COLUMNS + units), frames)
    write_text(run_dir / "summary.csv", per_seed.to_csv(index=False, float_format="%.6f"))
    order = {m: i for i, m in enumerate(dict.fromkeys(frames["method"]))}
    per_seed = per_seed.sort_values("method", key=lambda s: s.map(order), kind="stable")
    shown = with_noise_free_arms(frames)
    lines = [
        "# MOSXAV-Bench run",
        "",
        "Test split; metrics and aggregation per `mosxav.evaluation.metrics` (HD95 and ASSD in pixels at the "
        "frame's resolution). Each cell: the headline (a training's frame-weighted mean, averaged over its "
        "seeds: the number `compare` and a leaderboard row print) and its 95 % interval over test units and "
        "seeds (folds, in a cross-validated run; `mosxav.evaluation.uncertainty`), within the metric's range; "
        "units: test sequences, or images for a folder of images.",
        "",
    ]
    control_lines, blind = _control_section(frames)
    lines += control_lines
    lines += ["## Mean over the structures", ""]
    lines += _headline_section(shown, untrained, blind)
    lines += ["## Per structure", ""]
    headers = ["method", "labeled", "label noise", "seeds", "structure"] + [HEADERS[m] for m in RANKED_METRICS]
    table = []
    names = frames.drop_duplicates("class_id").set_index("class_id")["class"]
    for class_id in sorted(names.index):
        for r in _arm_rows(shown, int(class_id)):
            table.append(
                [r["method"], f"{r['labeled_fraction']:g}", f"{r['label_noise']:g}", r["seeds"], names[class_id]]
                + [r[m] for m in RANKED_METRICS]
            )
    lines.append(markdown_table(headers, table))
    lines += _training_section(training)
    notes = _plots(shown, order, run_dir)
    lines += ["## Figures", "", *notes, ""] if notes else []
    write_text(run_dir / "results.md", "\n".join(lines))
    return per_seed


def figure_intervals(frames: pd.DataFrame) -> pd.DataFrame:
    """Per arm and structure (and ``mean`` over the structures): Dice with its interval, for the figures."""
    rows = []
    names = frames.drop_duplicates("class_id").set_index("class_id")["class"]
    for key, group in frames.groupby(ARM_COLUMNS, sort=False):
        arm = dict(zip(ARM_COLUMNS, key, strict=True))
        for class_id, name in [(None, "mean"), *sorted(names.items())]:
            if class_id is not None and not group.loc[group["class_id"] == class_id, "evaluated"].astype(bool).any():
                continue
            interval = arm_interval(group, "dice", None if class_id is None else [class_id])
            rows.append(
                arm | {"structure": name, "estimate": interval.estimate, "low": interval.low, "high": interval.high}
            )
    return pd.DataFrame(rows)


def _plots(frames: pd.DataFrame, order: dict[str, int], run_dir: Path) -> list[str]:
    """``dice_by_structure``, ``dice_vs_fraction`` (when a method ran at several labeled fractions) and
    (several noise rates) ``dice_vs_noise``, PNG + PDF; returns the report's lines on figures not drawn."""
    intervals = figure_intervals(frames)
    methods = sorted(order, key=order.get)
    structures = intervals[intervals["structure"] != "mean"]
    figures.dice_by_structure(structures, methods, run_dir / "dice_by_structure.png")
    means = intervals[intervals["structure"] == "mean"]
    clean = means[means["label_noise"] == means["label_noise"].min()]
    notes = []
    if clean.groupby("method")["labeled_fraction"].nunique().max() > 1:
        figures.dice_curve(clean, methods, "labeled_fraction", "labeled fraction", run_dir / "dice_vs_fraction.png")
    else:
        for stale in ("dice_vs_fraction.png", "dice_vs_fraction.pdf"):
            (run_dir / stale).unlink(missing_ok=True)
        notes.append(
            "No `dice_vs_fraction` figure: every method ran at one labeled fraction (one dot each); "
            "`dice_by_structure.png` shows the run."
        )
    if frames["label_noise"].nunique() > 1:
        trained = means[means["labeled_fraction"] > 0]
        figures.dice_curve(
            trained,
            methods,
            "label_noise",
            "label-noise rate",
            run_dir / "dice_vs_noise.png",
            panels="labeled_fraction",
        )
    return notes


def write_overlays(data: Any, run_dir: Path, first_cells: dict[str, str], count: int) -> None:
    """Ground truth and each method's first cell's prediction on ``count`` test frames, side by side
    (``overlays: 0`` in a run config: no ``overlays.png``)."""
    if count <= 0 or len(data.test) == 0:
        return
    picks = np.linspace(0, len(data.test) - 1, num=min(count, len(data.test))).astype(int)
    tiles = []
    for index in picks:
        item = data.test[int(index)]
        frame = f"{item['sequence']}/{item['frame']}"
        tiles.append((item["image"], item["semantic"], f"{frame}: ground truth"))
        for method_name, tag in first_cells.items():
            path = run_dir / "submissions" / tag / "predictions" / item["sequence"] / f"{item['frame']}.png"
            tiles.append((item["image"], read_index_mask(path), f"{frame}: {method_name}"))
    contact_sheet(tiles, run_dir / "overlays.png", columns=1 + len(first_cells))
