"""Where a vessel prediction fails: recall on thin branches against recall on the trunk.

Dice pools every vessel pixel, so a method that trims thin distal branches and one that narrows the
trunk can score alike. Splitting the ground truth by width tells them apart: a vessel pixel is *trunk*
when it lies inside a disk of ``radius`` that fits in the mask (it survives a morphological opening by
that disk: the vessel there is at least ``2 * radius + 1`` pixels wide); every other vessel pixel is
*thin*. Recall is then counted per part (precision has no width of its own: a false positive has no
ground-truth vessel to be thin or thick).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def disk(radius: int) -> np.ndarray:
    """The lattice disk of ``radius`` pixels (centre to pixel centre), as a boolean footprint."""
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2


def split_by_width(gt: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(trunk, thin): the ground-truth pixels at least ``2 * radius + 1`` wide, and the rest."""
    gt = np.asarray(gt, dtype=bool)
    # The image edge must not shave the trunk: pad with the mask's own edge pixels before opening.
    padded = np.pad(gt, radius, mode="edge")
    trunk = ndimage.binary_opening(padded, structure=disk(radius))[radius:-radius, radius:-radius] & gt
    return trunk, gt & ~trunk


@dataclass(frozen=True)
class WidthRecall:
    """Pixel counts of one or more frames: ground truth per part and how much of it was predicted."""

    trunk: int
    trunk_found: int
    thin: int
    thin_found: int

    def __add__(self, other: WidthRecall) -> WidthRecall:
        return WidthRecall(
            self.trunk + other.trunk,
            self.trunk_found + other.trunk_found,
            self.thin + other.thin,
            self.thin_found + other.thin_found,
        )

    @property
    def trunk_recall(self) -> float:
        return self.trunk_found / self.trunk if self.trunk else float("nan")

    @property
    def thin_recall(self) -> float:
        return self.thin_found / self.thin if self.thin else float("nan")

    @property
    def thin_share(self) -> float:
        """The thin part's share of the ground-truth vessel pixels."""
        total = self.trunk + self.thin
        return self.thin / total if total else float("nan")


def width_recall(gt: np.ndarray, pred: np.ndarray, radius: int = 2) -> WidthRecall:
    """Recall of ``pred`` on the trunk and on the thin branches of ``gt`` (boolean masks, one shape)."""
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    pred = np.asarray(pred, dtype=bool)
    trunk, thin = split_by_width(gt, radius)
    return WidthRecall(int(trunk.sum()), int((trunk & pred).sum()), int(thin.sum()), int((thin & pred).sum()))
