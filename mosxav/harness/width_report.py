"""Thin branches or the trunk: vessel recall split by width for the methods of pairs-folder runs.

For every method of every run folder given (its ``submissions/<method>/.../predictions/<folder>/<id>.png``,
all seeds and folds), each test image's ground truth ``<gt>/<id>_gt.png`` is split into trunk (at least
``2 * radius + 1`` px wide) and thin branches (``mosxav.evaluation.metrics.width``), and the recall of
each part is printed as a Markdown table, pooled over pixels and as the mean over images, beside the
precision (a false positive has no width). With ``--reference METHOD`` every other method is paired
with it per image (values averaged over seeds): the mean difference of thin recall, trunk recall and
precision, its 95 % interval over images, the sign-flip p and the images better/worse, as
``mosxav-bench compare`` pairs Dice: where a method loses, thin branches, trunk or false positives.

Command: ``mosxav-bench width-recall runs/xca-cv runs/xca-cv-crop --gt
../shared/data/xca-coronary-cimat-80/training [--radius 2] [--reference supervised] [--out width_recall.md]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mosxav.data.files import read_index_mask
from mosxav.evaluation.metrics.width import WidthRecall, width_recall
from mosxav.harness.compare import format_p, paired_difference
from mosxav.harness.report import markdown_table

MEASURES = {"thin_recall": "thin recall", "trunk_recall": "trunk recall", "precision": "precision"}


def prediction_paths(run: Path) -> list[tuple[str, str, Path]]:
    """(method, seed folder, PNG) for every predicted image of a run folder."""
    found = []
    for path in sorted((run / "submissions").glob("*/**/predictions/*/*.png")):
        parts = path.relative_to(run / "submissions").parts
        seed = next((part for part in parts if part.startswith("seed")), "seed0")
        found.append((parts[0], seed, path))
    return found


def image_records(runs: list[Path], gt: Path, radius: int) -> pd.DataFrame:
    """One row per (run, method, seed, image): the width split's pixel counts and the precision."""
    rows = []
    for run in runs:
        for method, seed, path in prediction_paths(run):
            truth = read_index_mask(gt / f"{path.stem}_gt.png") > 0
            predicted = read_index_mask(path) == 1
            counts = width_recall(truth, predicted, radius)
            found = int(predicted.sum())
            rows.append(
                {
                    "run": run.name,
                    "method": method,
                    "seed": seed,
                    "image": path.stem,
                    "counts": counts,
                    "thin_recall": counts.thin_recall,
                    "trunk_recall": counts.trunk_recall,
                    "precision": int((predicted & truth).sum()) / found if found else float("nan"),
                }
            )
    table = pd.DataFrame(rows)
    # With several runs a method is named by its run too, so that the same method of two runs pairs.
    return table.assign(method=table["run"] + ":" + table["method"]) if len(runs) > 1 and len(table) else table


def table(records: pd.DataFrame, radius: int) -> str:
    headers = [
        "run",
        "method",
        "images",
        "thin share of GT",
        "thin recall",
        "trunk recall",
        "thin recall per image",
        "precision per image",
    ]
    rows = []
    for (run, method), group in records.groupby(["run", "method"], sort=False):
        method = method.removeprefix(f"{run}:")
        pooled = sum(group["counts"], WidthRecall(0, 0, 0, 0))
        figures = (
            pooled.thin_share,
            pooled.thin_recall,
            pooled.trunk_recall,
            np.nanmean(group["thin_recall"]),
            np.nanmean(group["precision"]),
        )
        rows.append([run, method, len(group), *(f"{value:.3f}" for value in figures)])
    title = (
        f"Vessel recall by width (trunk: at least {2 * radius + 1} px wide; thin: the rest), pooled over "
        "pixels; per image: mean over images."
    )
    return f"{title}\n\n{markdown_table(headers, rows)}"


def paired_table(records: pd.DataFrame, reference: str) -> str:
    """Every method against ``reference`` per image (means over seeds) for each measure."""
    per_image = records.groupby(["method", "image"], sort=False)[list(MEASURES)].mean()
    if reference not in per_image.index.get_level_values("method"):
        raise ValueError(f"reference method {reference!r} not found; methods: {sorted(set(records['method']))}")
    base = per_image.loc[reference]
    rows = []
    for method in dict.fromkeys(records["method"]):
        if method == reference:
            continue
        mine = per_image.loc[method].reindex(base.index)
        for measure, label in MEASURES.items():
            stats = paired_difference(mine[measure].to_numpy(), base[measure].to_numpy())
            rows.append(
                [
                    method,
                    label,
                    stats["units"],
                    f"{stats['method_mean']:.3f}",
                    f"{stats['reference_mean']:.3f}",
                    f"{stats['difference']:+.3f} [{stats['ci_low']:+.3f}, {stats['ci_high']:+.3f}]",
                    format_p(stats["p"]),
                    f"{stats['better']}/{stats['worse']}",
                ]
            )
    headers = ["method", "measure", "images", "value", reference, "difference", "p", "better/worse"]
    title = (
        f"Paired per image against {reference} (mean over seeds; difference = method - {reference}, 95 % "
        "interval over images; p: sign-flip permutation test)."
    )
    return f"{title}\n\n{markdown_table(headers, rows)}"


def width_report(runs: list[Path], gt: Path, radius: int = 2, reference: str | None = None) -> str:
    """The Markdown table of every method's recall by width, and the paired table against ``reference``.

    Raises:
        ValueError: no predictions in the run folders, or no method named ``reference``.
    """
    records = image_records(runs, gt, radius)
    if records.empty:
        raise ValueError(f"no predictions under {[str(run / 'submissions') for run in runs]}")
    text = table(records, radius)
    if reference:
        text += "\n\n" + paired_table(records, reference)
    return text
