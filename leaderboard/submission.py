"""Submissions: unpack safely, validate completely, hash the predictions.

A submission is a folder or ``.zip`` holding ``submission.yaml`` and either predicted semantic masks
in the MOSXAV layout (``<seq>/<frame>.png``, class ids 0-5, optionally under ``predictions/``) or a
COCO results JSON with RLE masks (``predictions.json``; see ``mosxav_leaderboard.coco``). Validation never
stops at the first problem: the submitter gets one report listing every missing or extra frame, wrong
size, out-of-range id, unreadable file and schema error.

Hostile input is refused before anything is written outside the work folder: archives go through
``mosxav.data.archive.safe_extract`` (no traversal, absolute paths or links; limits on total size, member
count and compression ratio checked before extraction), folders may not contain symlinks, images
beyond ``MAX_IMAGE_PIXELS`` are refused before their pixels are decoded, YAML is read with
``safe_load`` rules, without aliases and under a size cap, into the typed schema of
``mosxav.submission``.
"""

from __future__ import annotations

import functools
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mosxav.constants import SEMANTIC_DIR
from mosxav.data.archive import ArchiveLimits, safe_extract
from mosxav.data.files import read_untrusted_yaml
from mosxav.data.layout import FrameRecord, mask_frames, sequence_folders
from mosxav.data.splits import Partition
from mosxav.errors import DataError, Problem
from mosxav.evaluation.folder import evaluate_predictions
from mosxav.submission import MAX_FILE_BYTES, SUBMISSION_FILE, SubmissionMeta

COCO_FILE = "predictions.json"
#: A test split is ~500 frames of <100 kB each; anything far beyond is refused unread.
SUBMISSION_LIMITS = ArchiveLimits(max_total_bytes=2 * 1024**3, max_members=20_000, max_ratio=100.0)


class SubmissionInvalid(Exception):
    """Raised with the complete list of problems found in a submission."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the submission:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class PreparedSubmission:
    root: Path
    meta: SubmissionMeta
    predictions: Path  # a folder of <seq>/<frame>.png class-id masks
    prediction_hash: str
    frames: pd.DataFrame  # per-(frame, class) metrics, from the same decode that checked each PNG
    partition: Partition | None = None


def unpack(path: Path, work: Path) -> Path:
    """The submission's root folder: a folder as is (after a symlink check), an archive extracted into ``work``."""
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            for name in dirnames + filenames:
                if os.path.islink(os.path.join(dirpath, name)):
                    raise DataError(Path(dirpath) / name, "symbolic links are not allowed in a submission")
        return path
    if not path.is_file():
        raise DataError(path, "submission not found (give a folder or a .zip)")
    if not zipfile.is_zipfile(path):
        raise DataError(path, "a submission file must be a .zip archive")
    target = work / "unpacked"
    safe_extract(path, target, SUBMISSION_LIMITS)
    entries = [p for p in target.iterdir() if not p.name.startswith(".")]
    if not (target / SUBMISSION_FILE).is_file() and len(entries) == 1 and entries[0].is_dir():
        return entries[0]  # zipped with a top-level folder
    return target


def parse_meta(root: Path) -> tuple[SubmissionMeta | None, Partition | None, list[Problem]]:
    """``submission.yaml`` through the typed schema, and its partition file; every problem is reported."""
    path = root / SUBMISSION_FILE
    if not path.is_file():
        return None, None, [Problem(SUBMISSION_FILE, "missing: every submission needs this metadata file")]
    try:
        data = read_untrusted_yaml(path, "submission metadata", MAX_FILE_BYTES)
    except DataError as exc:
        return None, None, [Problem(SUBMISSION_FILE, exc.problem)]
    meta, found = SubmissionMeta.parse(data)
    problems = [Problem(SUBMISSION_FILE, message) for _, message in found]
    named = data.get("partition") if isinstance(data, dict) else None
    if not isinstance(named, str) or len(named) > 255:
        return meta, None, problems
    partition = None
    part_path = (root / named).resolve()
    if not part_path.is_relative_to(root.resolve()):
        problems.append(Problem(SUBMISSION_FILE, f"partition {named!r} points outside the submission"))
    elif not part_path.is_file():
        problems.append(Problem(named, "partition file not found"))
    else:
        try:
            partition = Partition.from_yaml(part_path, untrusted=True)
        except DataError as exc:
            problems.append(Problem(named, exc.problem))
    if partition is not None and partition.split != "train":
        problems.append(Problem(named, f"labeled frames must come from the train split, not {partition.split!r}"))
    return meta, partition, problems


def fraction_problems(
    meta: SubmissionMeta | None,
    partition: Partition | None,
    fractions: tuple[float, ...] | None,
    train_records: list[FrameRecord] | None,
) -> list[Problem]:
    """The declared labeled fraction checked against the benchmark's fractions and the partition file.

    A fraction is one of the benchmark's declared ones (``fractions``; None accepts any in [0, 1]), it
    equals the partition's, and the partition is what that fraction of the ground truth's annotated
    training frames is (when the ground truth holds the train split): a team cannot open its own
    group by declaring 0.2500001, nor label more frames than it declares.
    """
    if meta is None:
        return []
    problems = []
    fraction = meta.labeled_fraction
    if fractions is not None and not any(abs(fraction - f) <= 1e-12 for f in fractions):
        allowed = ", ".join(f"{f:g}" for f in fractions)
        problems.append(
            Problem(SUBMISSION_FILE, f"labeled_fraction {fraction!r} is not one of the benchmark's: {allowed}")
        )
    if partition is None or meta.partition is None:
        return problems
    if partition.fraction is None or abs(partition.fraction - fraction) > 1e-12:
        problems.append(
            Problem(SUBMISSION_FILE, f"labeled_fraction {fraction} disagrees with the partition's {partition.fraction}")
        )
    if train_records:
        problems += [Problem(meta.partition, message) for message in partition.problems_against(train_records)]
    return problems


def structure_problems(pred_root: Path, gt_root: Path, names: list[str], label: str) -> list[Problem]:
    """Every missing or extra sequence and frame, from the folder listings alone (nothing decoded)."""
    problems: list[Problem] = []
    expected_names = set(names)
    if pred_root.is_dir():
        for extra in sorted(
            p.name
            for p in pred_root.iterdir()
            if p.is_dir() and p.name not in expected_names and not p.name.startswith(".")
        ):
            problems.append(Problem(f"{label}/{extra}", "sequence not in the test split"))
    for name in names:
        gt_frames = {p.stem for p in mask_frames(gt_root / name)}
        folder = pred_root / name
        pred_frames = {p.stem for p in mask_frames(folder)} if folder.is_dir() else set()
        missing = sorted(gt_frames - pred_frames)
        if missing:
            problems.append(
                Problem(
                    f"{label}/{name}",
                    f"{len(missing)} frame(s) missing: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}",
                )
            )
        for stem in sorted(pred_frames - gt_frames):
            problems.append(
                Problem(f"{label}/{name}/{stem}.png", "extra frame: not a ground-truth frame of the test split")
            )
    return problems


@functools.lru_cache(maxsize=4)
def _train_records(gt: Path) -> list[FrameRecord] | None:
    """The ground truth's annotated training frames, when it holds the train split (else None).

    Listed once per process and ground truth: a scoring worker checks every partition against it, and
    a worker stops when its ground truth changes.
    """
    from mosxav import MOSXAV

    try:
        return MOSXAV(gt, "train").samples
    except (DataError, FileNotFoundError, ValueError):
        return None


def prepare(
    path: str | Path,
    gt: str | Path,
    work: str | Path,
    split: str = "test",
    fractions: tuple[float, ...] | None = None,
    workers: int | None = None,
) -> PreparedSubmission:
    """Unpack, validate, hash and score a submission; raises ``SubmissionInvalid`` with every problem.

    Each predicted PNG is decoded once: the pass that checks its ids and size also hashes and scores
    it, so a valid submission needs no second read and an invalid one still gets its complete report.

    Args:
        path: the submission folder or ``.zip``.
        gt: the ground-truth root (or a folder of sequence folders).
        work: scratch space (the archive is extracted here).
        split: the ground-truth split scored.
        fractions: the benchmark's labeled fractions; None accepts any in [0, 1].
        workers: processes scoring the sequences (default: the cores; a service's scoring worker
            passes 1, its parallelism is its number of workers).
    """
    from mosxav_leaderboard.coco import coco_to_masks

    path, work = Path(path), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    root = unpack(path, work)
    meta, partition, problems = parse_meta(root)
    problems += fraction_problems(meta, partition, fractions, _train_records(Path(gt).resolve()) if partition else None)
    gt_root, names = sequence_folders(gt, split, SEMANTIC_DIR)
    if (root / COCO_FILE).is_file():
        pred_root, label = work / "from_coco", COCO_FILE
        problems += coco_to_masks(root / COCO_FILE, gt_root, names, pred_root)
    else:
        pred_root = root / "predictions" if (root / "predictions").is_dir() else root
        label = "predictions" if pred_root != root else "."
    problems += structure_problems(pred_root, gt_root, names, label)
    evaluation = evaluate_predictions(gt_root, pred_root, names, workers=workers)
    problems += [Problem(f"{label}/{p.path}", p.message) for p in evaluation.problems]
    if problems or meta is None or evaluation.frames is None:
        raise SubmissionInvalid(problems)
    return PreparedSubmission(root, meta, pred_root, evaluation.digest, evaluation.frames, partition)
