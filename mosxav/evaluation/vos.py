"""The MOSXAV video-object-segmentation protocol: DAVIS region J and boundary F per object.

What is scored (the official MOSXAV evaluation, reproduced to 0.1 on its published val results):

* Only ground-truth frames are scored (sparse GT is fine); predictions must exist for each of them,
  extra prediction frames are ignored. Objects are the ids found in the ground truth of a sequence.
* For object o with first appearance s_o (from ``*_first_mask.json`` when given, else the first GT
  frame that contains it), the scored GT frames are indices i in [max(1, s_o), T-2] of the T sorted
  GT frames: frame 0 and the last frame are never scored (the DAVIS first/last-frame rule).
* J = IoU of (pred == o, gt == o), 1 when both are empty. F = DAVIS boundary F-measure: 1-px
  boundaries (``seg2bmap``), matched within a disk of radius ceil(0.008 * ||(H, W)||) (6 px at 512),
  F = 2PR/(P+R); P = R = 1 when both boundaries are empty, P = 1, R = 0 for an empty prediction.
* Object score = 100 x mean over its frames. Without seen/unseen information the global J and F are
  means over all objects and J&F = (J+F)/2. With it (test), the headline is the YouTube-VOS style
  mean of J_seen, F_seen, J_unseen, F_unseen (each a mean over that group's objects).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from mosxav.constants import INSTANCE_DIR
from mosxav.data.files import read_index_mask, write_text
from mosxav.data.layout import mask_frames, read_first_mask_json, sequence_folders
from mosxav.errors import DataError
from mosxav.evaluation.metrics.surface import bounding_box
from mosxav.evaluation.parallel import map_sequences
from mosxav.morphology import disk

BOUNDARY_THRESHOLD = 0.008


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """DAVIS 1-pixel boundary map: a pixel differs from its east, south or south-east neighbour."""
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> float:
    """J: IoU of two boolean masks, 1 when both are empty."""
    union = np.count_nonzero(gt | pred)
    return 1.0 if union == 0 else np.count_nonzero(gt & pred) / union


def boundary_radius(shape: tuple[int, ...], threshold: float = BOUNDARY_THRESHOLD) -> int:
    """The matching tolerance in pixels: ``threshold`` itself when >= 1, else ceil(threshold x diagonal)."""
    return int(threshold if threshold >= 1 else math.ceil(threshold * np.linalg.norm(shape)))


@lru_cache(maxsize=8)
def _half_widths(radius: int) -> np.ndarray:
    """For each row offset dy in [-r, r], the largest |dx| with (dy, dx) in the disk."""
    return disk(radius).sum(axis=1) // 2


def _row_offsets(radius: int) -> list[int]:
    """Row offsets, nearest first: most boundary pixels find their match in the first few."""
    return sorted(range(-radius, radius + 1), key=abs)


class _BoundaryIndex:
    """The pixels of one boundary map as sorted keys (row-major), for "is any pixel within the disk"
    queries without dilating the map.

    A key is ``(row + r) x stride + column`` with ``stride`` > width + 2r, so two pixels of different
    rows are always more than r keys apart: the nearest key in the query's own row decides.
    """

    def __init__(self, points: tuple[np.ndarray, np.ndarray], width: int, radius: int) -> None:
        self.radius = radius
        self.stride = width + 2 * radius + 2
        self.keys = (points[0].astype(np.int64) + radius) * self.stride + points[1]  # already row-major sorted

    def count_within(self, points: tuple[np.ndarray, np.ndarray], half_widths: np.ndarray) -> int:
        """How many ``points`` have a pixel of this map inside the disk around them: for some row offset
        dy, a pixel of row y + dy within the disk's half-width there. The points matched at small |dy|
        drop out before the larger offsets are tried. Equal to counting the points inside the map's
        disk dilation (the official computation), to the last pixel."""
        ys, xs = points
        base = (ys.astype(np.int64) + self.radius) * self.stride + xs
        remaining = base
        offsets = _row_offsets(self.radius)
        for stage in (offsets[:1], offsets[1:3], offsets[3:]):  # dy = 0, then +-1, then the rest at once
            if remaining.size == 0 or not stage:
                break
            dy = np.asarray(stage)[:, None]
            query = remaining[None, :] + dy * self.stride
            at = np.searchsorted(self.keys, query)
            before = self.keys[np.maximum(at - 1, 0)]
            after = self.keys[np.minimum(at, self.keys.size - 1)]
            gap = np.minimum(np.abs(query - before), np.abs(after - query))
            near = (gap <= half_widths[dy + self.radius]).any(axis=0)
            remaining = remaining[~near]
        return base.size - remaining.size


def _boundary_f_cropped(gt: np.ndarray, pred: np.ndarray, radius: int) -> float:
    """F of two boolean masks whose crop keeps a background margin of one pixel (or the image edge)."""
    points_gt, points_pred = _pixels(seg2bmap(gt)), _pixels(seg2bmap(pred))
    n_gt, n_pred = points_gt[0].size, points_pred[0].size
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # (P, R) = (1, 0) or (0, 1): F = 0
    half_widths = _half_widths(radius)
    width = gt.shape[1]
    precision = _BoundaryIndex(points_gt, width, radius).count_within(points_pred, half_widths) / n_pred
    recall = _BoundaryIndex(points_pred, width, radius).count_within(points_gt, half_widths) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _crop(gt: np.ndarray, pred: np.ndarray) -> tuple[slice, slice] | None:
    """The bounding box of both masks grown by one pixel (clipped to the image); None if both are empty.

    One background pixel around the masks is all ``seg2bmap`` looks at, so the boundary maps of the crop
    are those of the full frame, cropped; every boundary pixel lies inside, so distances are unchanged."""
    return bounding_box(gt | pred, margin=1)


def boundary_f(gt: np.ndarray, pred: np.ndarray, threshold: float = BOUNDARY_THRESHOLD) -> float:
    """F: DAVIS boundary F-measure of two boolean masks (the disk dilation of the official code,
    counted without dilating: see ``_BoundaryIndex``)."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    crop = _crop(gt, pred)
    if crop is None:
        return 1.0
    return _boundary_f_cropped(gt[crop], pred[crop], boundary_radius(gt.shape, threshold))


def _pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every non-zero pixel in row-major order (``np.nonzero``, faster on 1-D)."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def frame_scores(gt: np.ndarray, pred: np.ndarray, objects: Sequence[int], radius: int) -> list[tuple[float, float]]:
    """(J, F) of each object on one frame of id maps, each computed on the object's own crop."""
    scores = []
    for obj in objects:
        g, p = gt == obj, pred == obj
        crop = _crop(g, p)
        if crop is None:
            scores.append((1.0, 1.0))
            continue
        g, p = g[crop], p[crop]
        scores.append((region_similarity(g, p), _boundary_f_cropped(g, p, radius)))
    return scores


@dataclass
class ObjectScore:
    sequence: str
    obj: int
    j: float
    f: float
    n_frames: int
    seen: bool | None = None

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


@dataclass
class VosResult:
    """Per-object scores (0-100) and the global numbers of one evaluation."""

    objects: list[ObjectScore] = field(default_factory=list)
    has_seen_split: bool = False

    def global_scores(self) -> dict[str, float]:
        if not self.objects:
            raise ValueError("no objects were scored")
        j = float(np.mean([o.j for o in self.objects]))
        f = float(np.mean([o.f for o in self.objects]))
        scores = {"J&F": (j + f) / 2, "J": j, "F": f}
        if self.has_seen_split:
            groups = {}
            for tag, flag in (("s", True), ("u", False)):
                members = [o for o in self.objects if o.seen is flag]
                if members:
                    groups[f"J_{tag}"] = float(np.mean([o.j for o in members]))
                    groups[f"F_{tag}"] = float(np.mean([o.f for o in members]))
            scores.update(groups)
            scores["J&F"] = float(np.mean(list(groups.values())))
        return scores

    def to_csv(self) -> str:
        """The official CSV layout: space-padded columns, one decimal, 3-digit object ids."""
        g = self.global_scores()
        lines = []
        if self.has_seen_split:
            cols = [k for k in ("J_s", "F_s", "J_u", "F_u") if k in g]
            lines.append(f"{'':12s},{'':3s},{'J&F':>5s}," + ",".join(f"{c:>5s}" for c in cols))
            lines.append(f"{'Global score':12s},{'':3s},{g['J&F']:5.1f}," + ",".join(f"{g[c]:5.1f}" for c in cols))
            lines.append(f"{'sequence':12s},obj,{'J&F':>5s},{'J':>5s},{'F':>5s}")
        else:
            lines.append(f"{'sequence':12s},obj,{'J&F':>5s},{'J':>5s},{'F':>5s}")
            lines.append(f"{'Global score':12s},{'':3s},{g['J&F']:5.1f},{g['J']:5.1f},{g['F']:5.1f}")
        for o in self.objects:
            lines.append(f"{o.sequence:12s},{o.obj:03d},{o.jf:5.1f},{o.j:5.1f},{o.f:5.1f}")
        return "\n".join(lines) + "\n"


def _stems(folder: Path) -> list[str]:
    return [p.stem for p in mask_frames(folder)]


def evaluate_sequence(
    gt_dir: Path, pred_dir: Path, name: str, first: dict[str, str] | None = None, seen: set[str] | None = None
) -> list[ObjectScore]:
    """Score every object of one sequence; ``first`` maps object id -> first-mask stem."""
    stems = _stems(gt_dir)
    if not stems:
        raise DataError(gt_dir, "no ground-truth masks")
    missing = [s for s in stems if not (pred_dir / f"{s}.png").is_file()]
    if missing:
        raise DataError(
            pred_dir, f"prediction missing for ground-truth frames {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    gts = [read_index_mask(gt_dir / f"{s}.png") for s in stems]
    counts = [Image.fromarray(gt).histogram() for gt in gts]  # pixels of each id (0-255), per GT frame
    objects = [int(v) for v in np.flatnonzero(np.sum(counts, axis=0)) if v != 0]
    last = len(stems) - 2
    starts = {}
    for obj in objects:
        if first and str(obj) in first:
            starts[obj] = next((i for i, s in enumerate(stems) if s >= first[str(obj)]), len(stems))
        else:
            starts[obj] = next(i for i, frame_counts in enumerate(counts) if frame_counts[obj])
    radius = boundary_radius(gts[0].shape)
    js: dict[int, list[float]] = {obj: [] for obj in objects}
    fs: dict[int, list[float]] = {obj: [] for obj in objects}
    for i in range(1, last + 1):  # frame 0 and the last frame are never scored, so never decoded
        pred = read_index_mask(pred_dir / f"{stems[i]}.png")
        if pred.shape != gts[i].shape:
            raise DataError(
                pred_dir / f"{stems[i]}.png",
                f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth is {gts[i].shape[1]}x{gts[i].shape[0]}",
            )
        scored = [obj for obj in objects if starts[obj] <= i]
        for obj, (j, f) in zip(scored, frame_scores(gts[i], pred, scored, radius), strict=True):
            js[obj].append(j)
            fs[obj].append(f)
    scores = []
    for obj in objects:
        if not js[obj]:
            continue
        scores.append(
            ObjectScore(
                name,
                obj,
                100 * float(np.mean(js[obj])),
                100 * float(np.mean(fs[obj])),
                len(js[obj]),
                None if seen is None else str(obj) in seen,
            )
        )
    return scores


def evaluate_vos(
    gt: str | Path,
    pred: str | Path,
    *,
    first_mask: str | Path | None = None,
    split: str | None = None,
    sequences: Sequence[str] | None = None,
    workers: int | None = 1,
) -> VosResult:
    """Evaluate predicted instance masks against ground truth with the MOSXAV J&F protocol.

    Args:
        gt: a MOSXAV root (with ``split``) or a folder of sequence folders of instance masks.
        pred: the predictions, laid out as ``gt``.
        first_mask: ``*_first_mask.json``: each object's first frame and the seen/unseen split (the
            test headline is the mean of J and F over seen and unseen objects).
        split: the split when ``gt`` is a MOSXAV root.
        sequences: score only these sequences.
        workers: processes over the sequences (None: one per core).

    Returns:
        the per-object J and F (``VosResult``; ``write_results_csv`` writes the official CSV).

    Raises:
        DataError: a missing, unreadable or wrongly sized mask, named with its file.
    """
    gt_root, names = sequence_folders(gt, split, INSTANCE_DIR)
    pred_root, _ = sequence_folders(pred, split, INSTANCE_DIR)
    if sequences is not None:
        names = [n for n in names if n in set(sequences)]
    info = read_first_mask_json(first_mask) if first_mask else {}
    has_seen = bool(info) and any(v["seen"] or v["unseen"] for v in info.values())
    result = VosResult(has_seen_split=has_seen)
    jobs = []
    for name in names:
        if not (pred_root / name).is_dir():
            raise DataError(
                pred_root / name,
                "prediction folder missing for this sequence (restrict scoring with --sequences / sequences=)",
            )
        entry = info.get(name, {})
        seen = entry.get("seen") if has_seen else None
        jobs.append((gt_root / name, pred_root / name, name, entry.get("first"), seen))
    for objects in map_sequences(_evaluate_job, jobs, workers):
        result.objects.extend(objects)
    return result


def _evaluate_job(job: tuple[Path, Path, str, dict[str, str] | None, set[str] | None]) -> list[ObjectScore]:
    return evaluate_sequence(*job)


def write_results_csv(result: VosResult, path: str | Path) -> Path:
    write_text(path, result.to_csv())
    return Path(path)
