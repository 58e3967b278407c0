"""Scoring folders of semantic predictions against MOSXAV ground truth (``evaluate --task semantic``).

Frames are streamed: each worker reads one (gt, pred) pair at a time, so memory stays at a few
frames whatever the split size. Sequences are spread over processes (2 cores score a 488-frame,
MOSXAV-test-sized split in 0.6-1.1 s; ``bench/metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from mosxav.constants import FOREGROUND_CLASSES, NUM_CLASSES, SEMANTIC_DIR, SPLIT_PARTS
from mosxav.data.files import read_index_mask, write_text
from mosxav.data.layout import mask_frames, sequence_folders
from mosxav.errors import DataError
from mosxav.evaluation.metrics import evaluate_frame, frame_table, summarize
from mosxav.evaluation.metrics.surface import Spacing
from mosxav.evaluation.parallel import map_sequences


def _score_sequence(args: tuple[Path, Path, str, tuple[int, ...], Spacing, float]) -> list[dict]:
    gt_dir, pred_dir, name, classes, spacing, tolerance = args
    rows = []
    for gt_path in mask_frames(gt_dir):
        pred_path = pred_dir / gt_path.name
        gt = read_index_mask(gt_path, max_id=NUM_CLASSES - 1)
        pred = read_index_mask(pred_path, max_id=NUM_CLASSES - 1)
        if pred.shape != gt.shape:
            raise DataError(
                pred_path, f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth is {gt.shape[1]}x{gt.shape[0]}"
            )
        for row in evaluate_frame(gt, pred, classes=classes, spacing=spacing, tolerance=tolerance):
            rows.append({"sequence": name, "frame": gt_path.stem, **row})
    return rows


def missing_predictions(gt_root: Path, pred_root: Path, names: Sequence[str]) -> list[Path]:
    """Every ground-truth frame that has no prediction file (checked before any scoring starts)."""
    return [
        pred_root / n / p.name
        for n in names
        for p in mask_frames(gt_root / n)
        if not (pred_root / n / p.name).is_file()
    ]


def evaluate_semantic(
    gt: str | Path,
    pred: str | Path,
    *,
    split: str | None = None,
    classes: Sequence[int] = FOREGROUND_CLASSES,
    spacing: Spacing = (1.0, 1.0),
    tolerance: float = 2.0,
    sequences: Sequence[str] | None = None,
    workers: int | None = None,
    on_sequence: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Per-(frame, class) metrics of every ground-truth frame; see ``mosxav.evaluation.metrics`` for conventions."""
    gt_root, names = sequence_folders(gt, split, SEMANTIC_DIR)
    if sequences is not None:
        names = [n for n in names if n in set(sequences)]
    pred_root = Path(pred)
    if (pred_root / SEMANTIC_DIR).is_dir():
        pred_root = pred_root / SEMANTIC_DIR
    elif split is not None and (pred_root / SPLIT_PARTS[split] / SEMANTIC_DIR).is_dir():
        pred_root = pred_root / SPLIT_PARTS[split] / SEMANTIC_DIR
    missing = missing_predictions(gt_root, pred_root, names)
    if missing:
        raise DataError(
            pred_root,
            f"{len(missing)} ground-truth frames have no prediction, "
            f"e.g. {[str(m.relative_to(pred_root)) for m in missing[:5]]}",
        )
    jobs = [(gt_root / n, pred_root / n, n, tuple(classes), tuple(spacing), tolerance) for n in names]
    rows: list[dict] = []
    for job, result in zip(jobs, map_sequences(_score_sequence, jobs, workers), strict=True):
        rows.extend(result)
        if on_sequence:
            on_sequence(job[2])
    if not rows:
        raise DataError(gt_root, "no ground-truth frames found")
    return frame_table(rows)


def write_semantic_report(table: pd.DataFrame, out: str | Path) -> dict[str, Path]:
    """Per-frame CSV, per-sequence and overall summary CSVs beside ``out`` (``results.csv`` names the summary)."""
    out = Path(out)
    stem = out.with_suffix("")
    paths = {
        "summary": out,
        "per_frame": Path(f"{stem}_per_frame.csv"),
        "per_sequence": Path(f"{stem}_per_sequence.csv"),
    }
    write_text(paths["per_frame"], table.to_csv(index=False, float_format="%.6f"))
    write_text(paths["per_sequence"], summarize(table, by=["sequence"]).to_csv(index=False, float_format="%.6f"))
    write_text(paths["summary"], summarize(table).to_csv(index=False, float_format="%.6f"))
    return paths
