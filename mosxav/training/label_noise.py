"""Controlled label noise, for the labeled set and for pseudo-labels (the noisy-label study).

Four corruptions of a semantic mask, each applied independently with probability ``rate``:

* ``boundary``: each foreground structure eroded or dilated (50/50) by 1-2 pixels;
* ``drop_branch``: each vessel branch (instance id where the instance mask is given, else each
  connected vessel component) relabelled background;
* ``class_swap``: contrast catheter and catheter exchanged (the annotators' classic confusion);
* ``blobs``: 1-3 spurious ellipses of a random foreground class.

Rate 0 is the identity. The noise of a frame is a pure function of ``(seed, key)``, so the same
labeled frame carries the same wrong label in every epoch, as a real annotation error would.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from mosxav.constants import CATHETER, CONTRAST_CATHETER, NUM_CLASSES, OTHERS, VESSEL
from mosxav.morphology import disk

KINDS: tuple[str, ...] = ("boundary", "drop_branch", "class_swap", "blobs")


def frame_rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def corrupt_mask(
    mask: np.ndarray,
    rate: float,
    rng: np.random.Generator,
    instance: np.ndarray | None = None,
    kinds: Sequence[str] = KINDS,
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """A corrupted copy of a (H, W) semantic mask; ``rate`` in [0, 1]."""
    if not 0 <= rate <= 1:
        raise ValueError(f"noise rate must be in [0, 1], got {rate}")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown noise kinds {sorted(unknown)}; known: {KINDS}")
    out = mask.copy()
    if rate == 0:
        return out
    if "boundary" in kinds:
        for cls in [int(c) for c in np.unique(mask) if c != 0]:
            if rng.random() < rate:
                region = out == cls
                radius = int(rng.integers(1, 3))
                if rng.random() < 0.5:
                    out[region & ~ndimage.binary_erosion(region, disk(radius))] = 0
                else:
                    out[ndimage.binary_dilation(region, disk(radius)) & (out == 0)] = cls
    if "drop_branch" in kinds:
        vessel = out == VESSEL
        if instance is not None:
            branches = [vessel & (instance == k) for k in np.unique(instance[vessel]) if k != 0]
        else:
            labelled, n = ndimage.label(vessel)
            branches = [labelled == k for k in range(1, n + 1)]
        for branch in branches:
            if rng.random() < rate:
                out[branch] = 0
    if "class_swap" in kinds and rng.random() < rate:
        contrast, plain = out == CONTRAST_CATHETER, out == CATHETER
        out[contrast], out[plain] = CATHETER, CONTRAST_CATHETER
    if "blobs" in kinds and rng.random() < rate:
        h, w = out.shape
        yy, xx = np.mgrid[:h, :w]
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(0.01, 0.04) * h, rng.uniform(0.01, 0.04) * w
            cls = int(rng.integers(1, min(num_classes, OTHERS)))  # never the test-only class "others"
            out[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = cls
    return out


def corrupt_batch(
    labels: torch.Tensor,
    rate: float,
    generator: torch.Generator | None = None,
    kinds: Sequence[str] = KINDS,
    num_classes: int = NUM_CLASSES,
) -> torch.Tensor:
    """Corrupt (N, H, W) hard pseudo-labels (seeded from ``generator``, i.e. from the trainer's step seed)."""
    if rate == 0:
        return labels
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    rng = np.random.default_rng(seed)
    arrays = [
        corrupt_mask(label.cpu().numpy().astype(np.uint8), rate, rng, kinds=kinds, num_classes=num_classes)
        for label in labels
    ]
    return torch.from_numpy(np.stack(arrays)).to(labels.device, labels.dtype)
