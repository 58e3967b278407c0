"""Tensors for training: frames resized to the run's resolution, labeled and unlabeled views.

Frames are decoded on first access and the prepared tensors kept up to a byte budget per dataset
(``FRAME_CACHE_BYTES``), so memory stays bounded whatever the split's size. Weak augmentation = rotations, flips
and small shifts applied identically to image and mask; strong = weak + intensity jitter, noise and a cut-out
block, as used by FixMatch-style and Mean-Teacher consistency. The augmentations run on the batch's device
and draw their random numbers from a CPU generator, so a GPU run draws the same transforms as a CPU run
with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from mosxav.training.label_noise import corrupt_mask, frame_rng
from mosxav.training.network_input import InputConfig, network_input

#: Prepared frames (resized, normalized, label noise applied) a ``FrameTensors`` keeps in memory: every
#: step otherwise decodes its frames' PNGs again, resizes them and, with ``input.contrast: local``, runs
#: two Gaussian filters per frame (``bench/frame_cache.py`` measures what keeping them saves; figures
#: in docs/benchmarks.md).
#: A 256-px frame with its mask takes 320 KB, so the XCA folds and the quick default fit whole; a
#: larger split keeps the frames it met first and prepares the others on every access.
FRAME_CACHE_BYTES = 512 * 1024 * 1024


def resize_pair(image: np.ndarray, mask: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Bilinear for the image, nearest for the mask (ids must stay ids)."""
    if image.shape != (size, size):
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
        if mask is not None:
            mask = np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST))
    return image, mask


class FrameTensors(Dataset):
    """Wraps any item dataset (MOSXAV, FramePairs, ...) restricted to ``indices``; returns tensors.

    ``label_noise`` > 0 corrupts the masks (``mosxav.training.label_noise``), the same way every epoch;
    ``input_config`` says what the network sees of a frame (``mosxav.training.network_input``). A frame
    is prepared once and served from memory after that, within ``cache_bytes`` (``FRAME_CACHE_BYTES``):
    every one of these steps is a fixed function of the frame, so the cache changes no value."""

    def __init__(
        self,
        items: Any,
        indices: Sequence[int],
        size: int,
        with_mask: bool,
        label_noise: float = 0.0,
        noise_seed: int = 0,
        input_config: InputConfig | None = None,
        cache_bytes: int = FRAME_CACHE_BYTES,
    ) -> None:
        self.items = items
        self.indices = list(indices)
        self.size = size
        self.with_mask = with_mask
        self.label_noise = label_noise
        self.noise_seed = noise_seed
        self.input_config = input_config
        self._prepared: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._cache_room = cache_bytes

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """The frame as the network sees it (a copy: callers may change it in place) and its mask as int64."""
        index = self.indices[i]
        prepared = self._prepared.get(index)
        if prepared is None:
            prepared = self._prepare(index)
            self._keep(index, prepared)
        image, mask = prepared
        out = {"image": image.clone()}
        if mask is not None:
            out["mask"] = mask.long()
        return out

    def _prepare(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode, corrupt (the same way every epoch), resize and normalize one frame; the mask as uint8."""
        item = self.items[index]
        mask = item["semantic"] if self.with_mask else None
        if mask is not None and self.label_noise > 0:
            rng = frame_rng(self.noise_seed, f"{item['sequence']}/{item['frame']}")
            mask = corrupt_mask(mask, self.label_noise, rng)
        image, mask = resize_pair(item["image"], mask, self.size)
        image_tensor = torch.from_numpy(network_input(image, self.input_config))[None]
        mask_tensor = None if mask is None else torch.from_numpy(np.array(mask, dtype=np.uint8))
        return image_tensor, mask_tensor

    def _keep(self, index: int, prepared: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        """Cache a prepared frame while the byte budget lasts (first come, never evicted)."""
        size = sum(t.numel() * t.element_size() for t in prepared if t is not None)
        if size <= self._cache_room:
            self._prepared[index] = prepared
            self._cache_room -= size


def random_crop(batch: dict[str, torch.Tensor], generator: torch.Generator, size: int) -> dict[str, torch.Tensor]:
    """One ``size`` x ``size`` window per sample, at a random place, the same for its image and mask."""
    h, w = batch["image"].shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop {size} is larger than the {h}x{w} frames")
    corners = [
        (
            int(torch.randint(0, h - size + 1, (), generator=generator)),
            int(torch.randint(0, w - size + 1, (), generator=generator)),
        )
        for _ in range(batch["image"].shape[0])
    ]
    return {
        key: torch.stack([value[k, ..., y : y + size, x : x + size] for k, (y, x) in enumerate(corners)])
        for key, value in batch.items()
    }


def _rotate(x: torch.Tensor, degrees: float, mode: str) -> torch.Tensor:
    """Rotate (C, H, W) about the centre; zeros (background) enter at the corners."""
    theta = torch.tensor(degrees * math.pi / 180)
    matrix = torch.tensor([[torch.cos(theta), -torch.sin(theta), 0.0], [torch.sin(theta), torch.cos(theta), 0.0]])
    matrix = matrix[None].to(x.device)
    grid = F.affine_grid(matrix, [1, *x.shape], align_corners=False)
    return F.grid_sample(x[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0]


def weak_augment(
    batch: dict[str, torch.Tensor], generator: torch.Generator, max_degrees: float = 20.0
) -> dict[str, torch.Tensor]:
    """The SSL4MIS geometric augmentation, per sample and identical for image and mask: with
    probability 1/2 a random multiple of 90 degrees plus a flip, otherwise a rotation in
    [-max_degrees, max_degrees]; then a shift of up to 1/16 of the size. ``max_degrees=0`` keeps
    only flips and shifts (no rotation at all)."""
    images = batch["image"].clone()
    masks = batch["mask"].clone() if "mask" in batch else None
    n, _, h, w = images.shape
    for k in range(n):
        image = images[k]
        mask = masks[k] if masks is not None else None
        if max_degrees == 0:
            dims = [d for d, f in zip((-1, -2), torch.rand(2, generator=generator) < 0.5, strict=False) if f]
            image = image.flip(dims) if dims else image
            mask = mask.flip(dims) if mask is not None and dims else mask
        elif torch.rand((), generator=generator) < 0.5:
            turns = int(torch.randint(0, 4, (), generator=generator))
            flip = -1 if torch.rand((), generator=generator) < 0.5 else -2
            image = torch.rot90(image, turns, dims=(-2, -1)).flip(flip)
            mask = torch.rot90(mask, turns, dims=(-2, -1)).flip(flip) if mask is not None else None
        else:
            degrees = float((torch.rand((), generator=generator) * 2 - 1) * max_degrees)
            image = _rotate(image, degrees, "bilinear")
            mask = _rotate(mask[None], degrees, "nearest")[0].long() if mask is not None else None
        shift = torch.randint(-(h // 16), h // 16 + 1, (2,), generator=generator).tolist()
        images[k] = torch.roll(image, shift, dims=(-2, -1))
        if masks is not None:
            masks[k] = torch.roll(mask, shift, dims=(-2, -1))
    out = {"image": images}
    if masks is not None:
        out["mask"] = masks
    return out


def photometric_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per sample: contrast x[0.7, 1.3], brightness +-0.1, gamma in [0.74, 1.35], Gaussian noise (sigma
    0.03) and, half the time, a 3x3 blur: how angiograms differ between systems, doses and frames.
    Geometry and labels are untouched; the result is not clipped (noise may leave [0, 1]): callers clip."""
    n = images.shape[0]
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.6
    brightness = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.2
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.6)
    contrast, brightness, gamma = (v.to(images.device) for v in (contrast, brightness, gamma))
    out = ((images - 0.5) * contrast + 0.5 + brightness).clamp(1e-4, 1) ** gamma
    out = out + torch.randn(images.shape, generator=generator).to(images.device) * 0.03
    if torch.rand((), generator=generator) < 0.5:
        out = F.avg_pool2d(out, 3, stride=1, padding=1)
    return out


def strong_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Photometric perturbation (``photometric_augment``) plus one cut-out block."""
    n, _, h, w = images.shape
    out = photometric_augment(images, generator)
    for k in range(n):
        ch, cw = h // 4, w // 4
        y = int(torch.randint(0, h - ch + 1, (), generator=generator))
        x = int(torch.randint(0, w - cw + 1, (), generator=generator))
        out[k, :, y : y + ch, x : x + cw] = out[k].mean()
    return out.clamp(0, 1)
