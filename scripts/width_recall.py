"""Thin branches or the trunk: vessel recall split by width for the methods of pairs-folder runs.

For every method of every run folder given (its ``submissions/<method>/.../predictions/<folder>/<id>.png``,
all seeds and folds), each test image's ground truth ``<gt>/<id>_gt.png`` is split into trunk (at least
``2 * radius + 1`` px wide) and thin branches (``mosxav.evaluation.metrics.width``), and the recall of
each part is printed as a Markdown table, pooled over pixels and as the mean over images.

Usage: ``python scripts/width_recall.py --gt ../shared/data/xca-coronary-cimat-80/training
runs/xca-cv runs/xca-cv-crop [--radius 2] [--out width_recall.md]``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from mosxav.data.files import read_index_mask, write_text
from mosxav.evaluation.metrics.width import WidthRecall, width_recall
from mosxav.harness.report import markdown_table


def predictions(run: Path) -> dict[str, list[Path]]:
    """Every predicted PNG of a run folder, by method."""
    found: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((run / "submissions").glob("*/**/predictions/*/*.png")):
        method = path.relative_to(run / "submissions").parts[0]
        found[method].append(path)
    return found


def table(runs: list[Path], gt: Path, radius: int) -> str:
    headers = ["run", "method", "images", "thin share of GT", "thin recall", "trunk recall", "thin recall per image"]
    rows = []
    for run in runs:
        for method, paths in predictions(run).items():
            pooled = WidthRecall(0, 0, 0, 0)
            per_image = []
            for path in paths:
                truth = read_index_mask(gt / f"{path.stem}_gt.png") > 0
                counts = width_recall(truth, read_index_mask(path) == 1, radius)
                pooled = pooled + counts
                per_image.append(counts.thin_recall)
            figures = (pooled.thin_share, pooled.thin_recall, pooled.trunk_recall, np.nanmean(per_image))
            rows.append([run.name, method, len(paths), *(f"{value:.3f}" for value in figures)])
    title = (
        f"Vessel recall by width (trunk: at least {2 * radius + 1} px wide; thin: the rest), pooled over "
        "pixels; per image: mean over images."
    )
    return f"{title}\n\n{markdown_table(headers, rows)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of a pairs dataset")
    parser.add_argument("--gt", required=True, type=Path, help="the folder of N_gt.png masks")
    parser.add_argument("--radius", type=int, default=2, help="trunk = survives an opening by this disk")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    text = table(args.runs, args.gt, args.radius)
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
