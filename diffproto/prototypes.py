"""Class prototypes in the label-latent space and the prototype-based contrastive (InfoNCE) loss.

A prototype is the L2-normalised masked mean of a class's pixel embeddings, kept as an EMA across
batches (momentum ``mu``): an anchor that moves slowly. Each pixel embedding is pulled towards the
prototype of its (pseudo-)class and pushed from the others with temperature ``tau``. A wrong pseudo-
label on a few pixels moves a class mean very little, so the anchors stay where the clean majority
puts them: the robustness mechanism the paper's abstract describes.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class ClassPrototypes(nn.Module):
    """``num_classes`` unit vectors of size ``dim`` as buffers (saved in checkpoints, broadcast by DDP)."""

    def __init__(self, num_classes: int, dim: int, momentum: float = 0.99) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("vectors", torch.zeros(num_classes, dim))
        self.register_buffer("initialised", torch.zeros(num_classes, dtype=torch.bool))

    @torch.no_grad()
    def update(self, embeddings: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        """EMA update from (P, D) embeddings with (P,) class ids; a class's first batch sets it directly.

        Classes absent from the batch keep their prototype. Under ``torch.distributed`` the class sums
        and counts are summed over ranks first, so every rank's pixels reach the prototypes and every
        rank holds the prototypes of the global batch (DDP's buffer broadcast then changes nothing).
        """
        weights = torch.ones(labels.shape, device=embeddings.device) if weights is None else weights.float()
        onehot = F.one_hot(labels.long(), self.vectors.shape[0]).float() * weights[:, None]
        sums = onehot.t() @ embeddings.float()
        mass = onehot.sum(0)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(sums)
            dist.all_reduce(mass)
        means = sums / mass.clamp_min(1e-12)[:, None]
        present = mass > 0
        blended = torch.where(
            self.initialised[:, None], self.momentum * self.vectors + (1 - self.momentum) * means, means
        )
        self.vectors.copy_(torch.where(present[:, None], F.normalize(blended, dim=1), self.vectors))
        self.initialised |= present


def prototype_contrastive_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    prototypes: torch.Tensor,
    temperature: float = 0.1,
    weights: torch.Tensor | None = None,
    valid_classes: torch.Tensor | None = None,
    count_floor: float | None = None,
) -> torch.Tensor:
    """-(1/sum w) sum_i w_i log softmax_c(h_i . p_c / tau)[y_i] over (P, D) unit embeddings.

    ``valid_classes`` (bool, C) removes prototypes not yet initialised from the denominator; pixels
    whose own class has no prototype are ignored. ``count_floor``: divide by the number of pixels kept,
    at least ``count_floor``, instead of by the sum of the weights: a weight (the ramp on unlabeled
    pixels) then scales a pixel's part instead of cancelling in the normalisation, and a handful of
    pixels cannot carry the term at full weight when a batch has no others.
    """
    logits = embeddings @ prototypes.t() / temperature
    if valid_classes is not None:
        logits = logits.masked_fill(~valid_classes[None], float("-inf"))
        keep = valid_classes[labels.long()]
        weights = keep.float() if weights is None else weights * keep.float()
    per_pixel = -logits.log_softmax(1).gather(1, labels.long()[:, None]).squeeze(1)
    per_pixel = torch.nan_to_num(per_pixel, nan=0.0, posinf=0.0)
    if count_floor is not None:
        kept = per_pixel.new_ones(per_pixel.shape) if valid_classes is None else keep.float()
        weights = kept if weights is None else weights
        return (per_pixel * weights).sum() / kept.sum().clamp_min(count_floor)
    if weights is None:
        return per_pixel.mean()
    return (per_pixel * weights).sum() / weights.sum().clamp_min(1e-12)


def sample_pixels(
    labels: torch.Tensor, per_class: int, weights: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flat indices of up to ``per_class`` pixels of each class (among pixels of positive weight):
    class-balanced, so thin vessels count as much as the background."""
    flat = labels.reshape(-1)
    ok = torch.ones_like(flat, dtype=torch.bool) if weights is None else weights.reshape(-1) > 0
    chosen = []
    for cls in torch.unique(flat[ok]).tolist():
        idx = torch.nonzero(ok & (flat == cls)).squeeze(1)
        if idx.numel() > per_class:
            idx = idx[torch.randperm(idx.numel(), generator=generator, device="cpu")[:per_class].to(idx.device)]
        chosen.append(idx)
    return torch.cat(chosen) if chosen else flat.new_zeros(0, dtype=torch.long)
