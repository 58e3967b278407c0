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
from pathlib import Path

import numpy as np
from scipy import ndimage

from mosxav.constants import INSTANCE_DIR
from mosxav.data.files import read_index_mask, write_text
from mosxav.data.layout import mask_frames, read_first_mask_json, sequence_folders
from mosxav.errors import DataError
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


def boundary_f(gt: np.ndarray, pred: np.ndarray, threshold: float = BOUNDARY_THRESHOLD) -> float:
    """F: DAVIS boundary F-measure of two boolean masks."""
    radius = threshold if threshold >= 1 else math.ceil(threshold * np.linalg.norm(gt.shape))
    radius = int(radius)
    b_gt, b_pred = seg2bmap(gt), seg2bmap(pred)
    n_gt, n_pred = int(b_gt.sum()), int(b_pred.sum())
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # (P, R) = (1, 0) or (0, 1): F = 0
    # Dilate within the joint bounding box (plus the radius): identical result, far less work.
    rows = np.flatnonzero(b_gt.any(1) | b_pred.any(1))
    cols = np.flatnonzero(b_gt.any(0) | b_pred.any(0))
    r0, r1 = max(rows[0] - radius, 0), min(rows[-1] + radius + 1, gt.shape[0])
    c0, c1 = max(cols[0] - radius, 0), min(cols[-1] + radius + 1, gt.shape[1])
    b_gt, b_pred = b_gt[r0:r1, c0:c1], b_pred[r0:r1, c0:c1]
    element = disk(radius)
    gt_dil = ndimage.binary_dilation(b_gt, structure=element)
    pred_dil = ndimage.binary_dilation(b_pred, structure=element)
    precision = np.count_nonzero(b_pred & gt_dil) / n_pred
    recall = np.count_nonzero(b_gt & pred_dil) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


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
    preds = []
    for s, gt in zip(stems, gts, strict=False):
        pred = read_index_mask(pred_dir / f"{s}.png")
        if pred.shape != gt.shape:
            raise DataError(
                pred_dir / f"{s}.png",
                f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth is {gt.shape[1]}x{gt.shape[0]}",
            )
        preds.append(pred)
    objects = sorted({int(v) for gt in gts for v in np.unique(gt) if v != 0})
    last = len(stems) - 2
    scores = []
    for obj in objects:
        if first and str(obj) in first:
            start = next((i for i, s in enumerate(stems) if s >= first[str(obj)]), len(stems))
        else:
            start = next(i for i, gt in enumerate(gts) if (gt == obj).any())
        frames = range(max(1, start), last + 1)
        if len(frames) == 0:
            continue
        js, fs = [], []
        for i in frames:
            g, p = gts[i] == obj, preds[i] == obj
            js.append(region_similarity(g, p))
            fs.append(boundary_f(g, p))
        scores.append(
            ObjectScore(
                name,
                obj,
                100 * float(np.mean(js)),
                100 * float(np.mean(fs)),
                len(frames),
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
) -> VosResult:
    """Evaluate predicted instance masks against ground truth with the MOSXAV J&F protocol."""
    gt_root, names = sequence_folders(gt, split, INSTANCE_DIR)
    pred_root, _ = sequence_folders(pred, split, INSTANCE_DIR)
    if sequences is not None:
        names = [n for n in names if n in set(sequences)]
    info = read_first_mask_json(first_mask) if first_mask else {}
    has_seen = bool(info) and any(v["seen"] or v["unseen"] for v in info.values())
    result = VosResult(has_seen_split=has_seen)
    for name in names:
        if not (pred_root / name).is_dir():
            raise DataError(
                pred_root / name,
                "prediction folder missing for this sequence (restrict scoring with --sequences / sequences=)",
            )
        entry = info.get(name, {})
        seen = entry.get("seen") if has_seen else None
        result.objects.extend(evaluate_sequence(gt_root / name, pred_root / name, name, entry.get("first"), seen))
    return result


def write_results_csv(result: VosResult, path: str | Path) -> Path:
    write_text(path, result.to_csv())
    return Path(path)
