"""Controlled label noise, for the labeled set and for pseudo-labels (the noisy-label study).

Four corruptions of a semantic mask, each applied independently with probability ``rate``:

* ``boundary``: each foreground structure eroded or dilated (50/50) by 1-2 pixels;
* ``drop_branch``: each vessel segment relabelled background, the annotator's missed branch. The
  vessel mask is cut into segments about 1/8 of the frame long (pixels go to the nearest of seeds
  spread over the vessel), since an instance id is a whole tree in MOSXAV and cannot say where a
  branch is;
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


def vessel_segments(vessel: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Cut a vessel mask into pieces about 1/8 of the frame long: each pixel joins its nearest seed.

    The centreline length is estimated as area / width, the width as twice the median distance to the
    background on the ridge of the distance map; that many eighths of the frame side give the number
    of seeds, drawn among the vessel pixels.
    """
    if not vessel.any():
        return []
    depth = ndimage.distance_transform_edt(vessel)
    ridge = vessel & (ndimage.maximum_filter(depth, size=3) == depth)
    length = vessel.sum() / max(2.0 * float(np.median(depth[ridge])), 1.0)
    n_segments = max(1, round(length / (max(vessel.shape) / 8)))
    rows, cols = np.nonzero(vessel)
    chosen = rng.choice(len(rows), size=min(n_segments, len(rows)), replace=False)
    seeds = np.zeros(vessel.shape, np.int32)
    seeds[rows[chosen], cols[chosen]] = np.arange(1, len(chosen) + 1)
    _, (near_r, near_c) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    owner = np.where(vessel, seeds[near_r, near_c], 0)
    return [owner == k for k in range(1, len(chosen) + 1)]


def corrupt_mask(
    mask: np.ndarray,
    rate: float,
    rng: np.random.Generator,
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
        for segment in vessel_segments(out == VESSEL, rng):
            if rng.random() < rate:
                out[segment] = 0
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
