"""Segmentation losses and ramps shared by the methods.

Two Dice losses live here, because the references use two: ``soft_dice_loss`` (Milletari-style sums,
foreground classes present in the batch) and ``ssl4mis_dice_loss`` (SSL4MIS/BCP/UniMatch
``DiceLoss``: squared sums in the denominator, every class including the background averaged, an
optional pixel mask that restricts the sums to a region or drops unconfident pixels).
``supervised_loss`` picks the methods' supervised term by name, so every method of a run shares it.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

#: ``ssl4mis``: 0.5 (CE + Dice over all classes), the supervised term of SSL4MIS, BCP and UniMatch's
#: medical code; ``ce_dice``: CE + foreground Dice over the classes present (this toolkit's first
#: choice, kept for the XCA recipe that was measured with it); ``ce``: cross-entropy alone (TorchSemiSeg).
SupervisedLoss = Literal["ssl4mis", "ce_dice", "ce"]


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_background: bool = True, eps: float = 1e-5
) -> torch.Tensor:
    """1 - mean soft Dice over the classes present in the batch (target: N,H,W class ids)."""
    probs = logits.softmax(dim=1)
    onehot = F.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (total + eps)
    present = onehot.sum(dims) > 0
    if ignore_background:
        present[0] = False
    if not present.any():
        return logits.new_zeros(())
    return 1 - dice[present].mean()


def ssl4mis_dice_loss(
    probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, smooth: float = 1e-5
) -> torch.Tensor:
    """SSL4MIS's ``DiceLoss`` on probabilities: per class ``1 - (2 Σ p t + s) / (Σ p² + Σ t² + s)``, the
    sums over the batch's pixels where ``mask`` (N, H, W) is 1, averaged over all C classes.

    Args:
        probs: (N, C, H, W) class probabilities.
        target: (N, H, W) class ids.
        mask: (N, H, W) weights in {0, 1}: a region (BCP) or the confident pixels (UniMatch); None for all.
        smooth: the additive constant (SSL4MIS 1e-5, BCP 1e-10).
    """
    onehot = F.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    weight = probs.new_ones(()) if mask is None else mask[:, None].to(probs.dtype)
    dims = (0, 2, 3)
    inter = (probs * onehot * weight).sum(dims)
    denominator = (probs * probs * weight).sum(dims) + (onehot * weight).sum(dims)
    return (1 - (2 * inter + smooth) / (denominator + smooth)).mean()


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the pixels where ``mask`` is 1 (BCP's per-region CE)."""
    per_pixel = F.cross_entropy(logits, target.long(), reduction="none")
    return (per_pixel * mask).sum() / (mask.sum() + 1e-16)


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """CE + foreground soft Dice over the classes present (``supervised_loss: ce_dice``)."""
    return F.cross_entropy(logits, target.long(), weight=weight) + soft_dice_loss(logits, target)


def supervised_loss(logits: torch.Tensor, target: torch.Tensor, kind: SupervisedLoss = "ssl4mis") -> torch.Tensor:
    """The supervised term named by ``kind`` (see ``SupervisedLoss``)."""
    if kind == "ssl4mis":
        return 0.5 * (F.cross_entropy(logits, target.long()) + ssl4mis_dice_loss(logits.softmax(1), target))
    if kind == "ce_dice":
        return ce_dice_loss(logits, target)
    if kind == "ce":
        return F.cross_entropy(logits, target.long())
    raise ValueError(f"unknown supervised loss {kind!r}; use 'ssl4mis', 'ce_dice' or 'ce'")


def sigmoid_rampup(step: float, length: float) -> float:
    """Laine & Aila's ramp-up ``exp(-5 (1 - t)^2)`` with ``t = clip(step / length, 0, 1)``; 1 for ``length <= 0``
    (SSL4MIS ``utils/ramps.py``, ``sigmoid_rampup``)."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)
