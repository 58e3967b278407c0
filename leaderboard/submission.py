"""Submissions: unpack safely, validate completely, hash the predictions.

A submission is a folder or ``.zip`` holding ``submission.yaml`` and either predicted semantic masks
in the MOSXAV layout (``<seq>/<frame>.png``, class ids 0-5, optionally under ``predictions/``) or a
COCO results JSON with RLE masks (``predictions.json``; see ``mosxav_leaderboard.coco``). Validation never
stops at the first problem: the submitter gets one report listing every missing or extra frame, wrong
size, out-of-range id, unreadable file and schema error.

Hostile input is refused before anything is written outside the work folder: archives go through
``mosxav.data.archive.safe_extract`` (no traversal, absolute paths or links; limits on total size, member
count and compression ratio checked before extraction), folders may not contain symlinks, image
sizes are checked from the PNG header before decoding, YAML is read with ``yaml.safe_load``.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mosxav.constants import NUM_CLASSES, SEMANTIC_DIR
from mosxav.data.archive import ArchiveLimits, safe_extract
from mosxav.data.files import read_index_mask, read_yaml
from mosxav.data.layout import mask_frames, sequence_folders
from mosxav.data.splits import Partition
from mosxav.errors import DataError, Problem

SUBMISSION_FILE = "submission.yaml"
COCO_FILE = "predictions.json"
#: A test split is ~500 frames of <100 kB each; anything far beyond is refused unread.
SUBMISSION_LIMITS = ArchiveLimits(max_total_bytes=2 * 1024**3, max_members=20_000, max_ratio=100.0)

#: field -> (accepted types, required, description)
SCHEMA: dict[str, tuple[tuple[type, ...], bool, str]] = {
    "method": ((str,), True, "method name shown in the table"),
    "authors": ((str, list), True, "author names"),
    "contact": ((str,), True, "an e-mail address"),
    "code_url": ((str,), False, "URL of the code"),
    "paper_url": ((str,), False, "URL of the paper"),
    "labeled_fraction": (
        (float, int),
        True,
        "fraction of annotated training frames used with labels, in [0, 1] (0: no training labels)",
    ),
    "partition": (
        (str,),
        False,
        "path (inside the submission) of the mosxav partition YAML listing the labeled frames "
        "(required when labeled_fraction > 0)",
    ),
    "seeds": ((list, int), True, "training seed(s)"),
    "parameters": ((int,), True, "number of trainable parameters"),
    "extra_training_data": ((bool,), True, "true if any data beyond MOSXAV train was used"),
    "toolkit_version": ((str,), True, "mosxav-bench version used to produce the predictions"),
    "notes": ((str,), False, "free text"),
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL = re.compile(r"^https?://\S+$")


class SubmissionInvalid(Exception):
    """Raised with the complete list of problems found in a submission."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the submission:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class PreparedSubmission:
    root: Path
    meta: dict[str, Any]
    predictions: Path  # a folder of <seq>/<frame>.png class-id masks
    prediction_hash: str
    partition: Partition | None = None
    problems: list[Problem] = field(default_factory=list)


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
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise DataError(path, f"member {info.filename!r} is a symbolic link; links are not allowed")
    target = work / "unpacked"
    safe_extract(path, target, SUBMISSION_LIMITS)
    entries = [p for p in target.iterdir() if not p.name.startswith(".")]
    if not (target / SUBMISSION_FILE).is_file() and len(entries) == 1 and entries[0].is_dir():
        return entries[0]  # zipped with a top-level folder
    return target


def parse_meta(root: Path) -> tuple[dict[str, Any], Partition | None, list[Problem]]:
    """``submission.yaml`` checked field by field; every problem is reported."""
    path = root / SUBMISSION_FILE
    problems: list[Problem] = []
    if not path.is_file():
        return {}, None, [Problem(SUBMISSION_FILE, "missing: every submission needs this metadata file")]
    try:
        meta = read_yaml(path, "submission metadata")
    except DataError as exc:
        return {}, None, [Problem(SUBMISSION_FILE, exc.problem)]
    if not isinstance(meta, dict):
        return {}, None, [Problem(SUBMISSION_FILE, "must be a mapping of the fields " + ", ".join(SCHEMA))]
    for key in sorted(set(meta) - set(SCHEMA)):
        problems.append(Problem(SUBMISSION_FILE, f"unknown field {key!r}"))
    for key, (types, required, what) in SCHEMA.items():
        if key not in meta or meta[key] is None:
            if required:
                problems.append(Problem(SUBMISSION_FILE, f"missing field {key!r} ({what})"))
            continue
        value = meta[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            problems.append(Problem(SUBMISSION_FILE, f"field {key!r} has type {type(value).__name__}; expected {what}"))
    if isinstance(meta.get("contact"), str) and not EMAIL.match(meta["contact"]):
        problems.append(Problem(SUBMISSION_FILE, f"contact {meta['contact']!r} is not an e-mail address"))
    for key in ("code_url", "paper_url"):
        if isinstance(meta.get(key), str) and not URL.match(meta[key]):
            problems.append(Problem(SUBMISSION_FILE, f"{key} {meta[key]!r} is not an http(s) URL"))
    fraction = meta.get("labeled_fraction")
    if isinstance(fraction, (int, float)) and not isinstance(fraction, bool):
        if not 0 <= fraction <= 1:
            problems.append(Problem(SUBMISSION_FILE, f"labeled_fraction {fraction} is not in [0, 1]"))
        elif fraction > 0 and meta.get("partition") is None:
            problems.append(Problem(SUBMISSION_FILE, "missing field 'partition': which training frames were labeled"))
    if isinstance(meta.get("seeds"), list) and not all(
        isinstance(s, int) and not isinstance(s, bool) for s in meta["seeds"]
    ):
        problems.append(Problem(SUBMISSION_FILE, "seeds must be integers"))
    partition = None
    if isinstance(meta.get("partition"), str):
        part_path = (root / meta["partition"]).resolve()
        if not part_path.is_relative_to(root.resolve()):
            problems.append(Problem(SUBMISSION_FILE, f"partition {meta['partition']!r} points outside the submission"))
        elif not part_path.is_file():
            problems.append(Problem(meta["partition"], "partition file not found"))
        else:
            try:
                partition = Partition.from_yaml(part_path)
            except DataError as exc:
                problems.append(Problem(meta["partition"], exc.problem))
    if partition is not None and partition.split != "train":
        problems.append(
            Problem(meta["partition"], f"labeled frames must come from the train split, not {partition.split!r}")
        )
    return meta, partition, problems


def _frame_size(path: Path) -> tuple[int, int]:
    """(height, width) from the header alone: huge images are refused before decoding."""
    with Image.open(path) as image:
        return image.height, image.width


def validate_predictions(pred_root: Path, gt_root: Path, names: list[str], label: str) -> list[Problem]:
    """Every missing/extra sequence and frame, wrong size, unreadable file and out-of-range id."""
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
        gt_frames = {p.stem: p for p in mask_frames(gt_root / name)}
        folder = pred_root / name
        pred_frames = {p.stem: p for p in mask_frames(folder)} if folder.is_dir() else {}
        missing = sorted(set(gt_frames) - set(pred_frames))
        if missing:
            problems.append(
                Problem(
                    f"{label}/{name}",
                    f"{len(missing)} frame(s) missing: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}",
                )
            )
        for stem in sorted(set(pred_frames) - set(gt_frames)):
            problems.append(
                Problem(f"{label}/{name}/{stem}.png", "extra frame: not a ground-truth frame of the test split")
            )
        for stem in sorted(set(pred_frames) & set(gt_frames)):
            where = f"{label}/{name}/{stem}.png"
            try:
                size, expected = _frame_size(pred_frames[stem]), _frame_size(gt_frames[stem])
            except Image.DecompressionBombError as exc:
                problems.append(Problem(where, f"refused unread: {exc} (decompression bomb)"))
                continue
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                problems.append(Problem(where, f"unreadable PNG ({exc.__class__.__name__})"))
                continue
            if size != expected:
                problems.append(Problem(where, f"size {size[1]}x{size[0]}, expected {expected[1]}x{expected[0]}"))
                continue
            try:
                read_index_mask(pred_frames[stem], max_id=NUM_CLASSES - 1)
            except DataError as exc:
                problems.append(Problem(where, exc.problem))
    return problems


def prediction_hash(pred_root: Path, gt_root: Path, names: list[str]) -> str:
    """SHA-256 of the decoded label maps in a fixed order: identical predictions hash equal
    whatever PNG encoder, palette or zip produced them."""
    digest = hashlib.sha256()
    for name in names:
        for gt_path in mask_frames(gt_root / name):
            array = read_index_mask(pred_root / name / gt_path.name, max_id=NUM_CLASSES - 1)
            digest.update(f"{name}/{gt_path.stem}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def prepare(path: str | Path, gt: str | Path, work: str | Path, split: str = "test") -> PreparedSubmission:
    """Unpack, validate and hash a submission; raises ``SubmissionInvalid`` with every problem."""
    from mosxav_leaderboard.coco import coco_to_masks

    path, work = Path(path), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    root = unpack(path, work)
    meta, partition, problems = parse_meta(root)
    gt_root, names = sequence_folders(gt, split, SEMANTIC_DIR)
    if (root / COCO_FILE).is_file():
        pred_root, label = work / "from_coco", COCO_FILE
        problems += coco_to_masks(root / COCO_FILE, gt_root, names, pred_root)
    else:
        pred_root = root / "predictions" if (root / "predictions").is_dir() else root
        label = "predictions" if pred_root != root else "."
    problems += validate_predictions(pred_root, gt_root, names, label)
    if (
        partition is not None
        and isinstance(meta.get("labeled_fraction"), (int, float))
        and partition.fraction is not None
        and abs(partition.fraction - float(meta["labeled_fraction"])) > 1e-9
    ):
        problems.append(
            Problem(
                SUBMISSION_FILE,
                f"labeled_fraction {meta['labeled_fraction']} disagrees with the partition's {partition.fraction}",
            )
        )
    if problems:
        raise SubmissionInvalid(problems)
    return PreparedSubmission(root, meta, pred_root, prediction_hash(pred_root, gt_root, names), partition)
