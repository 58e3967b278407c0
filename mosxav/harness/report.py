"""The run report: ``summary.csv``, ``results.md``, the Dice plots and the overlay sheet.

Uncertainty is shown the way it was measured: with several seeds (or cross-validation folds) a cell is
mean ± std over the seeds x folds; with one seed and no folds it is the value and its 95 % bootstrap
interval over test sequences (never "± 0.000",
which would read as certainty). Trained methods are ranked within each (labeled fraction, label
noise) group; untrained references (thresholding) are listed as the floor, outside the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mosxav.data.files import read_index_mask, write_text
from mosxav.data.visualize import contact_sheet
from mosxav.evaluation.metrics import RANKED_METRICS, SUMMARY_METRICS, summarize
from mosxav.evaluation.uncertainty import SequenceSums, bootstrap_ci

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


def _cell_text(values: pd.Series, frames: pd.DataFrame | None, metric: str) -> str:
    """Mean ± std over seeds, or with one seed the value [95 % bootstrap interval over sequences]."""
    digits = 2 if metric in ("hd95", "assd") else 3
    if values.isna().all():
        return "–"  # the structure was in no frame of the ground truth or the predictions
    if len(values) > 1:
        return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"
    if frames is None or frames["sequence"].nunique() < 2:
        return f"{values.iloc[0]:.{digits}f}"
    lo, hi = bootstrap_ci(SequenceSums.from_frames(frames), metric)
    return f"{values.iloc[0]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _rows(per_seed: pd.DataFrame, frames: pd.DataFrame, class_name: str) -> list[dict[str, Any]]:
    """One row per (method, fraction, noise) for one class (or "mean"), with the cells as text."""
    rows = []
    selected = per_seed[per_seed["class"] == class_name]
    for key, group in selected.groupby(ARM_COLUMNS, sort=False):
        cell_frames = frames
        for column, value in zip(ARM_COLUMNS, key, strict=False):
            cell_frames = cell_frames[cell_frames[column] == value]
        if class_name != "mean":
            cell_frames = cell_frames[cell_frames["class"] == class_name]
        row = dict(zip(ARM_COLUMNS, key, strict=False))
        row["seeds"] = group["seed"].nunique()
        row["folds"] = group["fold"].nunique() if "fold" in group else 0
        row["dice_mean"] = group["dice"].mean()
        for metric in RANKED_METRICS:
            row[metric] = _cell_text(group[metric], cell_frames if len(group) == 1 else None, metric)
        rows.append(row)
    return rows


def _headline_section(rows: list[dict[str, Any]], untrained: Sequence[str]) -> list[str]:
    """Per (fraction, noise) group: trained methods ranked by mean Dice, then the untrained floor."""
    out = []
    trained = [r for r in rows if r["method"] not in untrained]
    floor = [r for r in rows if r["method"] in untrained]
    groups = sorted({(r["labeled_fraction"], r["label_noise"]) for r in trained})
    folds = any(r["folds"] for r in rows)
    headers = ["rank", "method", "seeds"] + (["folds"] if folds else []) + [HEADERS[m] for m in RANKED_METRICS]

    def cells(r: dict[str, Any]) -> list[Any]:
        return [r["seeds"]] + ([r["folds"]] if folds else []) + [r[m] for m in RANKED_METRICS]

    for fraction, noise in groups:
        members = [r for r in trained if (r["labeled_fraction"], r["label_noise"]) == (fraction, noise)]
        members.sort(key=lambda r: -r["dice_mean"])
        table = [[k + 1, r["method"], *cells(r)] for k, r in enumerate(members)]
        table += [["–", f"{r['method']} (untrained floor)", *cells(r)] for r in floor]
        out += [f"### labeled fraction {fraction:g}, label noise {noise:g}", "", markdown_table(headers, table)]
    return out


def write_report(frames: pd.DataFrame, run_dir: Path, untrained: Sequence[str] = ()) -> pd.DataFrame:
    """Summary CSV, Markdown report and plots from the per-frame table; returns the per-seed summary."""
    units = ["seed"] + (["fold"] if "fold" in frames.columns else [])
    per_seed = summarize(frames, by=ARM_COLUMNS + units)
    write_text(run_dir / "summary.csv", per_seed.to_csv(index=False, float_format="%.6f"))
    order = {m: i for i, m in enumerate(dict.fromkeys(frames["method"]))}
    per_seed = per_seed.sort_values("method", key=lambda s: s.map(order), kind="stable")
    lines = [
        "# MOSXAV-Bench run",
        "",
        "Test split; metrics and aggregation per `mosxav.evaluation.metrics` (HD95 and ASSD in pixels at the "
        "frame's resolution). With several seeds or cross-validation folds a cell is mean ± std over them "
        "(seeds x folds); with one seed and no folds, the value and its 95 % bootstrap interval over test "
        "sequences [low, high].",
        "",
        "## Mean over the structures (ranked within each group)",
        "",
    ]
    lines += _headline_section(_rows(per_seed, frames, "mean"), untrained)
    lines += ["## Per structure", ""]
    headers = ["method", "labeled", "label noise", "seeds", "structure"] + [HEADERS[m] for m in RANKED_METRICS]
    table = []
    classes = per_seed[per_seed["class"] != "mean"].sort_values("class_id")["class"].unique()
    for class_name in classes:
        for r in _rows(per_seed, frames, class_name):
            table.append(
                [r["method"], f"{r['labeled_fraction']:g}", f"{r['label_noise']:g}", r["seeds"], class_name]
                + [r[m] for m in RANKED_METRICS]
            )
    lines.append(markdown_table(headers, table))
    write_text(run_dir / "results.md", "\n".join(lines))
    _plots(per_seed, order, run_dir)
    return per_seed


def _plots(per_seed: pd.DataFrame, order: dict[str, int], run_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = per_seed.groupby(ARM_COLUMNS + ["class_id", "class"])[list(SUMMARY_METRICS)].agg(["mean", "std"])
    agg.columns = [f"{metric}_{stat}" for metric, stat in agg.columns]
    agg = agg.fillna({c: 0.0 for c in agg.columns if c.endswith("_std")}).reset_index()
    fig, ax = plt.subplots(figsize=(9, 4))
    clean = agg[(agg["class_id"] > 0) & (agg["label_noise"] == agg["label_noise"].min())]
    pivot = clean.pivot_table(index="class", columns="method", values="dice_mean")
    pivot = pivot[[m for m in order if m in pivot.columns]]
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("Dice (test)")
    ax.set_xlabel("structure")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(run_dir / "dice_by_structure.png", dpi=100)
    plt.close(fig)
    means = agg[agg["class"] == "mean"]
    clean_means = means[means["label_noise"] == means["label_noise"].min()]
    _dice_curve(
        plt, clean_means, "labeled_fraction", ["method"], "labeled fraction", run_dir / "dice_vs_fraction.png", (5, 4)
    )
    if agg["label_noise"].nunique() > 1:
        _dice_curve(
            plt,
            means,
            "label_noise",
            ["method", "labeled_fraction"],
            "label noise rate (labeled set)",
            run_dir / "dice_vs_noise.png",
            (6, 4),
        )


def _dice_curve(
    plt: Any, rows: pd.DataFrame, x: str, by: list[str], xlabel: str, path: Path, figsize: tuple[int, int]
) -> None:
    """Mean Dice (± std over seeds) against ``x``, one line per ``by`` group."""
    fig, ax = plt.subplots(figsize=figsize)
    for key, group in rows.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        label = key[0] if len(key) == 1 else f"{key[0]} ({key[1]:g})"
        ax.errorbar(group[x], group["dice_mean"], yerr=group["dice_std"], marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean Dice (test)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_overlays(data: Any, run_dir: Path, first_cells: dict[str, str], count: int) -> None:
    """Ground truth and each method's first cell's prediction on ``count`` test frames, side by side
    (``overlays: 0`` in a run config: no ``overlays.png``)."""
    if count <= 0 or len(data.test) == 0:
        return
    picks = np.linspace(0, len(data.test) - 1, num=min(count, len(data.test))).astype(int)
    tiles = []
    for index in picks:
        item = data.test[int(index)]
        tiles.append((item["image"], item["semantic"], f"GT {item['sequence']}/{item['frame']}"))
        for method_name, tag in first_cells.items():
            path = run_dir / "submissions" / tag / "predictions" / item["sequence"] / f"{item['frame']}.png"
            tiles.append((item["image"], read_index_mask(path), method_name))
    contact_sheet(tiles, run_dir / "overlays.png", columns=1 + len(first_cells))
