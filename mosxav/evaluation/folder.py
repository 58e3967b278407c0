"""Scoring folders of semantic predictions against MOSXAV ground truth (``evaluate --task semantic``).

Frames are streamed: each worker reads one (gt, pred) pair at a time, so memory stays at a few
frames whatever the split size. Sequences are spread over processes (``bench/metrics.py`` times a
MOSXAV-test-sized split; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mosxav.constants import FOREGROUND_CLASSES, NUM_CLASSES, SEMANTIC_DIR, SPLIT_PARTS
from mosxav.data.files import read_index_mask, write_text
from mosxav.data.layout import mask_frames, sequence_folders
from mosxav.errors import DataError, Problem
from mosxav.evaluation.metrics import evaluate_frame, frame_table, summarize
from mosxav.evaluation.metrics.surface import Spacing
from mosxav.evaluation.parallel import map_sequences


class PredictionProblems(DataError):
    """Every problem of a folder of predictions (missing, unreadable, out of range, wrongly sized frames),
    collected before anything is scored, so a user fixes them in one round."""

    def __init__(self, pred_root: Path, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(pred_root, f"{len(problems)} problem(s), the first: {first.path}: {first.message}")


@dataclass(frozen=True)
class SequenceResult:
    """One sequence scored: its metric rows, what is wrong with its predictions, and their digest.

    The rows are left empty once any prediction of the sequence has a problem (they would not be used).
    """

    rows: list[dict]
    problems: list[Problem]  # paths relative to the prediction root: "<sequence>/<frame>.png"
    digest: str  # SHA-256 of the decoded label maps of the sequence, in ground-truth frame order


def _score_sequence(args: tuple[Path, Path, str, tuple[int, ...], Spacing, float]) -> SequenceResult:
    """Each prediction decoded once, for its check (ids, size), its digest and its metrics.

    Frames without a prediction file are skipped: the callers report missing frames before scoring.
    """
    gt_dir, pred_dir, name, classes, spacing, tolerance = args
    rows: list[dict] = []
    problems: list[Problem] = []
    digest = hashlib.sha256()
    for gt_path in mask_frames(gt_dir):
        pred_path = pred_dir / gt_path.name
        if not pred_path.is_file():
            continue
        where = f"{name}/{gt_path.name}"
        gt = read_index_mask(gt_path, max_id=NUM_CLASSES - 1)
        try:
            pred = read_index_mask(pred_path, max_id=NUM_CLASSES - 1, max_pixels=gt.size)
        except DataError as exc:
            problems.append(Problem(where, exc.problem))
            continue
        if pred.shape != gt.shape:
            problems.append(
                Problem(where, f"size {pred.shape[1]}x{pred.shape[0]}, expected {gt.shape[1]}x{gt.shape[0]}")
            )
            continue
        digest.update(f"{name}/{gt_path.stem}:{pred.shape}".encode())
        digest.update(np.ascontiguousarray(pred).tobytes())
        if problems:
            continue
        for row in evaluate_frame(gt, pred, classes=classes, spacing=spacing, tolerance=tolerance):
            rows.append({"sequence": name, "frame": gt_path.stem, **row})
    return SequenceResult([] if problems else rows, problems, digest.hexdigest())


@dataclass(frozen=True)
class FolderEvaluation:
    """A folder of predictions checked, hashed and scored in one pass."""

    frames: pd.DataFrame | None  # per-(frame, class) metrics; None when any prediction has a problem
    problems: list[Problem]  # every unreadable, out-of-range or wrongly sized prediction
    digest: str  # SHA-256 over the sequences' digests: equal label maps hash equal, whatever encoded them


def evaluate_predictions(
    gt_root: Path,
    pred_root: Path,
    names: Sequence[str],
    *,
    classes: Sequence[int] = FOREGROUND_CLASSES,
    spacing: Spacing = (1.0, 1.0),
    tolerance: float = 2.0,
    workers: int | None = None,
    on_sequence: Callable[[str], None] | None = None,
) -> FolderEvaluation:
    """Check, hash and score every present prediction of ``names``, each PNG decoded once.

    Untrusted predictions (a leaderboard submission) come here so that a submitter gets every problem
    in one report and a valid submission is scored by the same decode that checked it.

    Args:
        gt_root: the folder of ground-truth sequence folders (semantic masks).
        pred_root: the folder of predicted sequence folders (``<sequence>/<frame>.png``).
        names: the sequences, in the order they are hashed.
        workers: processes for the sequences (default: the cores).
        on_sequence: called with each sequence's name once it is scored.
    """
    jobs = [(gt_root / n, pred_root / n, n, tuple(classes), tuple(spacing), tolerance) for n in names]
    rows: list[dict] = []
    problems: list[Problem] = []
    digest = hashlib.sha256()
    for job, result in zip(jobs, map_sequences(_score_sequence, jobs, workers), strict=True):
        rows.extend(result.rows)
        problems.extend(result.problems)
        digest.update(f"{job[2]}\0{result.digest}\n".encode())
        if on_sequence:
            on_sequence(job[2])
    if problems or not rows:
        return FolderEvaluation(None, problems, digest.hexdigest())
    return FolderEvaluation(frame_table(rows), problems, digest.hexdigest())


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
    """Per-(frame, class) metrics of every ground-truth frame; see ``mosxav.evaluation.metrics`` for conventions.

    Args:
        gt: a MOSXAV root (with ``split``) or a folder of sequence folders of semantic masks.
        pred: the predictions (``<sequence>/<frame>.png`` class ids), or a root laid out as ``gt``.
        split: the split when ``gt`` is a MOSXAV root.
        classes: the classes scored (default: the five foreground structures).
        spacing: the pixel spacing (rows, columns) distances are in.
        tolerance: the NSD tolerance in units of ``spacing``.
        sequences: score only these sequences.
        workers: processes over the sequences (default: the cores).
        on_sequence: called with each sequence's name once it is scored.

    Returns:
        one row per (sequence, frame, class) (``frame_table``; ``summarize`` aggregates it).

    Raises:
        PredictionProblems: predictions missing, unreadable, out of range or of the wrong size, every one
            named with its file (a ``DataError``).
    """
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
        problems = [
            Problem(str(m.relative_to(pred_root)), "no prediction for this ground-truth frame") for m in missing
        ]
        raise PredictionProblems(pred_root, problems)
    evaluation = evaluate_predictions(
        gt_root,
        pred_root,
        names,
        classes=classes,
        spacing=spacing,
        tolerance=tolerance,
        workers=workers,
        on_sequence=on_sequence,
    )
    if evaluation.problems:
        raise PredictionProblems(pred_root, evaluation.problems)
    if evaluation.frames is None:
        raise DataError(gt_root, "no ground-truth frames found")
    return evaluation.frames


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
