"""All metrics of one (ground truth, prediction) binary mask pair, with the empty-mask table applied."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mosxav.evaluation.metrics.surface import PairStack, Spacing, SurfaceDistances, pair_margin

#: Every metric computed per (frame, class) pair.
METRIC_NAMES = ("dice", "iou", "hd", "hd95", "assd", "nsd")
#: The per-class summary a run report and ``mosxav-bench evaluate`` show.
SUMMARY_METRICS = ("dice", "iou", "hd95", "assd", "nsd")
#: The headline metrics with bootstrap intervals (leaderboard columns, run report cells).
RANKED_METRICS = ("dice", "iou", "hd95", "assd")
DISTANCE_METRICS = ("hd", "hd95", "assd")


def distance_cap(shape: tuple[int, int], spacing: Spacing = (1.0, 1.0)) -> float:
    """The value given to HD/HD95/ASSD when exactly one mask is empty: the image diagonal
    H*sy by W*sx (724.1 px at 512x512), larger than any distance inside the frame."""
    return float(np.hypot(shape[0] * spacing[0], shape[1] * spacing[1]))


@dataclass(frozen=True)
class PairScores:
    dice: float
    iou: float
    hd: float
    hd95: float
    assd: float
    nsd: float
    gt_present: bool
    pred_present: bool

    @property
    def capped(self) -> bool:
        """True when exactly one mask is empty (the distances are the cap, not measured)."""
        return self.gt_present != self.pred_present

    def as_dict(self) -> dict:
        """The fields and ``capped`` (built by hand: ``dataclasses.asdict`` deep-copies, 10x slower)."""
        fields = {name: getattr(self, name) for name in PAIR_FIELDS}
        return {**fields, "capped": self.capped}


PAIR_FIELDS = tuple(field.name for field in dataclasses.fields(PairScores))


def overlap_scores(intersection: int, gt_count: int, pred_count: int) -> tuple[float, float]:
    """Dice and IoU from pixel counts; both empty counts as perfect agreement (1, 1)."""
    total = gt_count + pred_count
    if total == 0:
        return 1.0, 1.0
    union = total - intersection
    return 2.0 * intersection / total, intersection / union


def pair_metrics(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    spacing: Spacing = (1.0, 1.0),
    tolerance: float = 2.0,
    counts: tuple[int, int, int] | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> PairScores:
    """Dice, IoU, HD, HD95, ASSD and NSD@tolerance of two boolean masks.

    Empty masks (the leaderboard table of ``mosxav.evaluation.metrics``): both empty -> Dice = IoU = NSD = 1
    and distances 0; exactly one empty -> Dice = IoU = NSD = 0 and distances = ``distance_cap``.
    ``counts`` = (intersection, |gt|, |pred|) when the caller already has them. ``image_shape``: the whole
    frame's shape when ``gt`` and ``pred`` are a window of it holding every foreground pixel of both
    (``class_windows``): every score is the same, the cap is the frame's diagonal.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    margin = pair_margin(spacing, tolerance)
    pair = None
    if counts is None:
        pair = PairStack.crop(gt, pred, margin)
        counts = pair.counts() if pair else (0, 0, 0)
    shape = gt.shape if image_shape is None else image_shape
    scores = _unmeasured_scores(counts, shape, spacing)
    if scores is not None:
        return scores
    pair = pair or PairStack.crop(gt, pred, margin)
    dist, nsd = pair.scores(spacing, tolerance)[0]
    return _measured_scores(counts, dist, nsd)


def window_metrics(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    image_shape: tuple[int, ...],
    *,
    spacing: Spacing = (1.0, 1.0),
    tolerance: float = 2.0,
) -> list[PairScores]:
    """``pair_metrics`` of several boolean mask pairs of one frame (``image_shape``), each pair a window
    of the frame holding every foreground pixel of both masks (``semantic.class_windows``), with the
    same values: the pairs with both masks present are measured together, as bands of one
    ``PairStack``, so a frame's classes cost one dense pass each, not one per class."""
    scores: list[PairScores | None] = []
    measured: list[tuple[np.ndarray, np.ndarray]] = []
    measured_counts: list[tuple[int, int, int]] = []
    for gt, pred in pairs:
        if gt.shape != pred.shape:
            raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
        gt = np.asarray(gt, dtype=bool)
        pred = np.asarray(pred, dtype=bool)
        counts = (int(np.count_nonzero(gt & pred)), int(np.count_nonzero(gt)), int(np.count_nonzero(pred)))
        unmeasured = _unmeasured_scores(counts, image_shape, spacing)
        scores.append(unmeasured)
        if unmeasured is None:
            measured.append((gt, pred))
            measured_counts.append(counts)
    if measured:
        stack = PairStack.stack(measured, pair_margin(spacing, tolerance))
        surfaces = iter(zip(measured_counts, stack.scores(spacing, tolerance), strict=True))
        for position, score in enumerate(scores):
            if score is None:
                counts, (dist, nsd) = next(surfaces)
                scores[position] = _measured_scores(counts, dist, nsd)
    return [score for score in scores if score is not None]


def _unmeasured_scores(
    counts: tuple[int, int, int], image_shape: tuple[int, ...], spacing: Spacing
) -> PairScores | None:
    """The scores of a pair with at least one empty mask (the table above), None when both are present."""
    inter, n_gt, n_pred = counts
    dice, iou = overlap_scores(inter, n_gt, n_pred)
    gt_present, pred_present = n_gt > 0, n_pred > 0
    if not gt_present and not pred_present:
        return PairScores(dice, iou, 0.0, 0.0, 0.0, 1.0, False, False)
    if gt_present != pred_present:
        cap = distance_cap(image_shape, spacing)
        return PairScores(dice, iou, cap, cap, cap, 0.0, gt_present, pred_present)
    return None


def _measured_scores(counts: tuple[int, int, int], dist: SurfaceDistances, nsd: float) -> PairScores:
    dice, iou = overlap_scores(*counts)
    return PairScores(dice, iou, dist.hd, dist.hd_percentile(95.0), dist.assd, nsd, True, True)
