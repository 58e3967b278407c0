"""Segmentation losses shared by the methods (cross-entropy + soft Dice, the usual SSL baseline pair)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    return F.cross_entropy(logits, target.long(), weight=weight) + soft_dice_loss(logits, target)


def sigmoid_rampup(step: int, length: int) -> float:
    """Laine & Aila's ramp-up exp(-5 (1 - t)^2), used for consistency weights."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return float(torch.exp(torch.tensor(-5.0 * (1.0 - t) ** 2)))
